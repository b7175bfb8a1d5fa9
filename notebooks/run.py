"""Executes every notebook in this folder top to bottom and fails on the first error.

Used by `.ci/run`; the notebooks read their parameters from the environment (see README.md).
"""

import sys
from pathlib import Path

import nbclient
import nbformat

here = Path(__file__).resolve().parent
failed = passed = 0
for path in sorted(here.glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(here)}}
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        failed += 1
        print(f"notebook {path.name}: FAILED\n{error}", file=sys.stderr)
        continue
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                print(f"[{path.name}] {out['text'].rstrip()}")
    passed += 1
    print(f"notebook {path.name}: ok")
print(f"notebooks: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
