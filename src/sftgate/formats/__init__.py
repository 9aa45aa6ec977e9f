"""Input formats. `gemini` reads the Vertex Gemini `contents` format into an `Example`;
`detect` recognises the other common SFT formats so a record in one of them gets a finding that
names its format instead of a pile of schema errors; `convert` turns records of those formats
into Gemini records (`convert.convert`, `convert.detect`: imported from the module, as these
names would shadow the submodules here); `containers` reads records stored as a JSON array, CSV
or Parquet."""

from sftgate.formats.containers import CONTAINERS, Item, read_items, sniff
from sftgate.formats.convert import FORMATS, Converted, Note, parse_map
from sftgate.formats.detect import FOREIGN_FORMATS, ForeignFormat, detect_foreign
from sftgate.formats.gemini import to_example

__all__ = [
    "CONTAINERS", "FOREIGN_FORMATS", "FORMATS", "Converted", "ForeignFormat", "Item", "Note",
    "detect_foreign", "parse_map", "read_items", "sniff", "to_example",
]
