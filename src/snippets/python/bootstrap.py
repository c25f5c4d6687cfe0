"""Prepares the embedded interpreter: the sandbox package served from the binary, and a
sys.path that holds the standard library and towerhook's own package directory only."""

import importlib.abc
import importlib.util
import sys


class EmbeddedSources(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Imports modules whose source is compiled into the towerhook binary."""

    def __init__(self, modules):
        # name -> (path shown in tracebacks, source, is_package)
        self._modules = modules

    def find_spec(self, fullname, path=None, target=None):
        entry = self._modules.get(fullname)
        if entry is None:
            return None
        return importlib.util.spec_from_loader(
            fullname, self, origin=entry[0], is_package=entry[2]
        )

    def is_package(self, fullname):
        return self._modules[fullname][2]

    def get_source(self, fullname):
        return self._modules[fullname][1]

    def get_code(self, fullname):
        origin, source, _ = self._modules[fullname]
        return compile(source, origin, "exec", dont_inherit=True)

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)


def install(modules, packages_dir):
    sys.meta_path.insert(0, EmbeddedSources(modules))
    # Only the standard library and the packages towerhook's set-up installed: what a
    # snippet can use must not depend on what else is installed on the machine.
    sys.path[:] = [
        entry
        for entry in sys.path
        if entry and "site-packages" not in entry and "dist-packages" not in entry
    ]
    if packages_dir:
        sys.path.append(packages_dir)
    sys.dont_write_bytecode = True
    return "%s (%s)" % (sys.version.split()[0], sys.prefix)
