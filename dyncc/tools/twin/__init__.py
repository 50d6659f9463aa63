"""The timed twin's tools: its report on a sweep and live measurements. Making the timing files is part of a
build (:mod:`dyncc.twin`)."""
