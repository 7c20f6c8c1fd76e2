"""Import an existing IVI 2.0 document as approval and build record: moved to ``shared.ivi_import``.

The workspace's approval upload takes an existing certificate as its starting
point too, and a service may not import tooling; the devkit and the command
line keep importing it from here.
"""

from shared.ivi_import import IMPORTED_PLANT, IviImportError, import_document

__all__ = ["IMPORTED_PLANT", "IviImportError", "import_document"]
