"""The IVI 2.0 facets of every per-vehicle value a build carries into its certificate, read from the schema.

The build record's contract bounds its fields loosely (a VIN is a string of at most
32 characters); the certificate's element types are stricter, and they are the
official schema's (IVI-2.0.xsd), read once at start: VehicleIdentificationNumber has
length 17 and pattern [A-Z0-9]+, ColourCode and ViennaCountryCode are enumerations,
ActualMass an Integer6 from 0 to 999999. Intake checks each value here against its
element's simple type (``shared.ivi.SimpleType``: length, pattern, enumeration,
numeric bounds and digits), so a value the certificate could not carry is refused
at the door naming its field, instead of becoming a record the pipeline cannot
render. Only which field fills which element is written here; the facets are the
schema's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from shared.contracts import BuildRecord
from shared.ivi import IviSchema, SimpleType

# Build field -> the IVI element it fills (render lays it there, services/render/document.py).
CERTIFICATE_VALUES: Final[Mapping[str, str]] = {
    "vin": "CocDataGroup/VehicleIdentificationNumber",
    "manufactured_on": "CocDataGroup/DateManufactureVehicle",
    "colours": "CocDataGroup/ColourTable/ColourGroup/Colour",
    "actual_mass_kg": "CocDataGroup/MassGroup/ActualMass",
    "intended_country": "Header/IntendedCountryRegistration",
    "signature_date": "CocDataGroup/SigningAuthorityTable/SigningAuthorityGroup/SignatureDate",
}


@dataclass(frozen=True)
class BuildFacets:
    """The simple type of the element each per-vehicle field fills: ``problems`` checks a build against them."""

    types: Mapping[str, SimpleType]

    @classmethod
    def of(cls, schema: IviSchema) -> BuildFacets:
        return cls(
            {
                field: schema.simple_type(schema.declaration(path))
                for field, path in CERTIFICATE_VALUES.items()
            }
        )

    def problems(self, build: BuildRecord) -> list[tuple[str, str]]:
        """(field, why) for each value its certificate element refuses; empty when all fit."""
        found = []
        for field, location, text in lexical_values(build):
            problem = self.types[field].problem(text)
            if problem is not None:
                element = CERTIFICATE_VALUES[field].rpartition("/")[2]
                found.append((location, problem if element in problem else f"{problem} (IVI {element})"))
        return found

    def reason(self, build: BuildRecord) -> str | None:
        """The problems in one line, as a dead letter keeps them; None when the build fits."""
        problems = self.problems(build)
        return "; ".join(f"{field}: {message}" for field, message in problems) or None


def lexical_values(build: BuildRecord) -> Iterator[tuple[str, str, str]]:
    """(field, location, text) of each per-vehicle value, as the text render writes into the certificate."""
    yield "vin", "vin", build.vin
    if build.manufactured_on is not None:
        yield "manufactured_on", "manufactured_on", build.manufactured_on.isoformat()
    for index, colour in enumerate(build.colours):
        yield "colours", f"colours.{index}", colour
    if build.actual_mass_kg is not None:
        yield "actual_mass_kg", "actual_mass_kg", str(build.actual_mass_kg)
    if build.intended_country:
        yield "intended_country", "intended_country", build.intended_country
    if build.signature_date is not None:
        yield "signature_date", "signature_date", build.signature_date.isoformat()
