"""What every section of the spec shares: the strict base model, and the string patterns for what ends up in
shell scripts, manifests and file names."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# Strings that end up in shell scripts, manifests and file names. Anything outside these patterns is
# rejected at load time; what passes is still quoted by every target.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
NoControlChars = Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")]

# One word of a pool's launch prefix (a program and its arguments, each passed as one argv word).
LaunchWord = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)


class SectionModel(SpecModel):
    """A model of a target's settings section, or of a part of one.

    Its validator is built on first use, not at import: most specs write no section for most targets, and a
    build reads those targets' defaults only (``section_defaults``), so a build builds the models of the sections its
    spec writes and no others."""

    model_config = ConfigDict(defer_build=True)

    @classmethod
    def section_defaults(cls) -> SectionModel:
        """The instance ``cls()`` validates to. The first time a process asks, it is made without building a
        validator (``constructed_defaults``): a cold build asks once for each section its spec does not write.
        A process that asks again (a language server, a sweep, a test run) validates: the validator is built
        once, and then each instance costs a tenth of constructing one."""
        if cls.__pydantic_complete__ or cls in _DEFAULTS_MADE:
            return cls()
        _DEFAULTS_MADE.add(cls)
        return cls.constructed_defaults()

    @classmethod
    def constructed_defaults(cls) -> SectionModel:
        """``cls()`` made without a validator: every field's default, a nested section's own defaults made the
        same way. Defaults are valid by construction (a test compares this with ``cls()`` for every section
        model), so there is nothing to validate."""
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            factory = field.default_factory
            if isinstance(factory, type) and issubclass(factory, SectionModel):
                values[name] = factory.constructed_defaults()
        # Not the nested names: a default is not a value the spec set (model_fields_set stays empty).
        return cls.model_construct(_fields_set=set(), **values)


# The section models whose defaults this process has made once (SectionModel.section_defaults validates after that).
_DEFAULTS_MADE: set[type[SectionModel]] = set()
