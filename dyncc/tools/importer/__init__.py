"""``dyncc import``: an existing DynamoGraphDeployment (v1beta1 or v1alpha1) and its engine configs -> a spec.

The manifests are read into :class:`DgdFacts` (per role: replicas, GPUs, image, worker flags, engine config;
:mod:`.manifests`), the same reading the round trip applies to what dyncc builds from the imported spec, so
the two can be compared fact by fact (:func:`compare`, :mod:`.compare`). Whatever the spec cannot say is a
coded warning (DYN951-DYN969) naming the facts it accounts for (:class:`ImportNote`; :mod:`.builder`), never
dropped silently: the round trip's differences must all be accounted for by a warning. :mod:`.spec_file`
checks the spec and writes its text.
"""

from __future__ import annotations

from dyncc.tools.import_input import read_sources
from dyncc.tools.importer.compare import compare, covered, round_trip
from dyncc.tools.importer.manifests import DgdFacts, Difference, ImportNote, ImportResult, facts, parse_flags
from dyncc.tools.importer.spec_file import comment_text, import_dgd, spec_text

__all__ = [
    "DgdFacts",
    "Difference",
    "ImportNote",
    "ImportResult",
    "comment_text",
    "compare",
    "covered",
    "facts",
    "import_dgd",
    "parse_flags",
    "read_sources",
    "round_trip",
    "spec_text",
]
