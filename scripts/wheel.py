"""Build a minimal pure-Python wheel from a directory, with no wheel package.

usage: wheel.py SRC_DIR PACKAGE VERSION OUT_DIR

The machine this project is tested on has no Python package index and no
`wheel` package, so `pip wheel` cannot build one; a wheel is just a zip with
metadata, which is all this writes.
"""
import os
import sys
import zipfile

src, pkg, version, out = sys.argv[1:5]
os.makedirs(out, exist_ok=True)
dist = f"{pkg}-{version}.dist-info"
path = os.path.join(out, f"{pkg}-{version}-py3-none-any.whl")
with zipfile.ZipFile(path, "w") as z:
    for dirpath, _, files in os.walk(os.path.join(src, pkg)):
        for name in files:
            if name.endswith(".pyc"):
                continue
            full = os.path.join(dirpath, name)
            z.write(full, os.path.relpath(full, src))
    z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {pkg}\nVersion: {version}\n")
    z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: autogate\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(f"{dist}/RECORD", "")
print(path)
