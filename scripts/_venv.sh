# Sourced by the scripts: which interpreter and which virtual environment they use.
# PYTHON unset: python3 and .venv (what developers use day to day). PYTHON set (a path or a
# name on PATH): that interpreter and its own .venv-<major>.<minor>, so that several Pythons
# can be tested side by side (.ci/run does; see scripts/pythons).
if [ -n "${PYTHON:-}" ]; then
    VENV=.venv-$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
else
    PYTHON=python3
    VENV=.venv
fi
PY=$VENV/bin/python
