// MathJax 3 settings for pymdownx.arithmatex (generic mode) and for the markdown cells of
// the rendered tutorials. Every element with a class is skipped (with its contents), unless
// its class is one of `processHtmlClass`; inside those, class-less elements (the <p> and
// <li> of a notebook's markdown cell) are typeset too. So a "$" in ordinary prose or code
// is left alone. The site does not use Material's instant navigation, so every page load
// typesets its own page.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "none",
  },
  options: {
    ignoreHtmlClass: "[^ ]+",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown|jp-MarkdownOutput",
  },
  svg: {
    fontCache: "global",
  },
};
