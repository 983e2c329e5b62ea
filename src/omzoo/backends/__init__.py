"""One module (or sub-package) per runtime, each owning everything about it: compile, run, host checks, the
device's state. base.py holds the interface and the registry."""
