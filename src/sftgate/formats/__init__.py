"""Input formats. `gemini` reads the Vertex Gemini `contents` format into an `Example`;
`detect` recognises the other common SFT formats so a record in one of them gets a finding that
names its format instead of a pile of schema errors."""

from sftgate.formats.detect import FOREIGN_FORMATS, ForeignFormat, detect_foreign
from sftgate.formats.gemini import to_example

__all__ = ["FOREIGN_FORMATS", "ForeignFormat", "detect_foreign", "to_example"]
