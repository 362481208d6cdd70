"""docs/scripts/execute_tutorials.py hands the caller's environment to the kernel it starts."""

import importlib.util
import json
import os

import pytest
from conftest import REPO

SCRIPT = REPO / "docs" / "scripts" / "execute_tutorials.py"


@pytest.mark.skipif(importlib.util.find_spec("nbclient") is None or importlib.util.find_spec("ipykernel") is None,
                    reason="needs the docs extra (nbclient, ipykernel): pip install -e '.[docs]'")
def test_kernel_sees_the_callers_environment(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("execute_tutorials", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    script = tmp_path / "99_env.py"
    script.write_text("# %%\nimport os\n"
                      'print(os.environ.get("GTN_EDU_NAS_TEACHER"), os.environ["GTN_EDU_TUTORIAL_SIZE"])\n')
    monkeypatch.setenv("GTN_EDU_NAS_TEACHER", "/some/teacher")  # e.g. tutorial 3's stored teacher
    before = dict(os.environ)
    dest = module.execute(script, "tiny", tmp_path / "out", tmp_path / "99_env.ipynb")
    out = json.loads(dest.read_text())["cells"][0]["outputs"][0]["text"]
    assert "".join(out).strip() == "/some/teacher tiny"
    assert dict(os.environ) == before  # the caller's environment is restored
