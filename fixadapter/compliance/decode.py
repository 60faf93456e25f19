"""FIX messages decoded for people: tag and field names, enum meanings and repeating groups, from our data
dictionary (spec/FIX44-CTRADER.xml), so a compliance officer never has to look up what `39=2` means.

The XML is parsed once into a `Dictionary` that the caller keeps; nothing here is cached globally.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from fixadapter.connectors.fix.wire import Pair, WireError, split_fields
from fixadapter.errors import FixAdapterError

DICTIONARY_NAME = "FIX44-CTRADER.xml"
# Tags whose value is a message type: their meaning is the message name (D -> NewOrderSingle).
MSG_TYPE_TAGS = frozenset({35, 372})
UNKNOWN_TAG = "[not in dictionary]"
UNKNOWN_VALUE = "not in dictionary"


class DictionaryError(FixAdapterError):
    """The FIX dictionary is missing or unreadable."""


class DecodeError(FixAdapterError):
    """A message that is not tag=value text."""


@dataclass(frozen=True)
class FieldDef:
    number: int
    name: str
    type: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupDef:
    """A repeating group: its count tag, member tags in order (the first starts each entry), nested groups."""

    count_tag: int
    members: tuple[int, ...]
    groups: dict[int, GroupDef]

    @property
    def delimiter(self) -> int:
        return self.members[0]


@dataclass(frozen=True)
class MessageDef:
    msg_type: str
    name: str
    groups: dict[int, GroupDef]


@dataclass(frozen=True)
class DecodedField:
    """One field as shown: `depth` > 0 inside a group; `starts_entry` on the first field of a group entry."""

    tag: int
    name: str
    value: str
    meaning: str | None = None
    depth: int = 0
    starts_entry: bool = False
    note: str | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"tag": self.tag, "name": self.name, "value": self.value}
        if self.meaning is not None:
            data["meaning"] = self.meaning
        if self.depth:
            data["depth"] = self.depth
        if self.starts_entry:
            data["entry"] = True
        if self.note is not None:
            data["note"] = self.note
        return data


def default_dictionary_path() -> Path:
    """spec/FIX44-CTRADER.xml under the working directory (the Docker image's /app), else the source's,
    else the copy shipped in the package (installed from a wheel)."""
    from fixadapter.data import packaged

    source_tree = Path(__file__).resolve().parents[2]
    shipped = packaged(DICTIONARY_NAME)
    candidates = (
        Path("spec") / DICTIONARY_NAME,
        source_tree / "spec" / DICTIONARY_NAME,
        *([shipped] if shipped is not None else []),
    )
    return next((path for path in candidates if path.is_file()), candidates[0])


class Dictionary:
    """Field names, enum meanings, message names and group layouts read from a QuickFIX XML dictionary."""

    def __init__(self, fields: dict[int, FieldDef], messages: dict[str, MessageDef]) -> None:
        self.fields = fields
        self.messages = messages
        self._by_name = {f.name.casefold(): f.number for f in fields.values()}
        self._types_by_name = {m.name.casefold(): m.msg_type for m in messages.values()}

    @classmethod
    def load(cls, path: Path | None = None) -> Dictionary:
        path = path or default_dictionary_path()
        try:
            root = ElementTree.parse(path).getroot()  # noqa: S314 - our own dictionary file
        except (OSError, ElementTree.ParseError) as exc:
            raise DictionaryError(f"cannot read the FIX dictionary {path}: {exc} (--dictionary)") from None
        return _parse(root, path)

    def name(self, tag: int) -> str:
        known = self.fields.get(tag)
        return known.name if known else UNKNOWN_TAG

    def message_name(self, msg_type: str) -> str | None:
        known = self.messages.get(msg_type)
        return known.name if known else None

    def msg_type(self, text: str) -> str:
        """`D`, `NewOrderSingle` or `newordersingle` -> `D`; anything else is returned as given."""
        if text in self.messages:
            return text
        return self._types_by_name.get(text.casefold(), text)

    def tag(self, text: str) -> int | None:
        """`11` or `ClOrdID` -> 11."""
        return int(text) if text.isdigit() else self._by_name.get(text.casefold())

    def meaning(self, tag: int, value: str) -> str | None:
        """The enum description, or the message name for a message type; None for free values."""
        if tag in MSG_TYPE_TAGS:
            return self.message_name(value) or UNKNOWN_VALUE
        known = self.fields.get(tag)
        if known is None or not known.values:
            return None
        return known.values.get(value, UNKNOWN_VALUE)

    def decode(self, raw: str) -> list[DecodedField]:
        """Every field of `raw` (SOH or `|` separated) in wire order, group entries nested."""
        try:
            pairs = split_fields(raw)
        except WireError as exc:
            raise DecodeError(f"not a FIX message: {exc}") from None
        msg_type = next((value for tag, value in pairs if tag == 35), "")
        message = self.messages.get(msg_type)
        groups = message.groups if message else {}
        out: list[DecodedField] = []
        index = 0
        while index < len(pairs):
            index = self._field(pairs, index, groups, 0, False, out)
        return out

    def _field(
        self,
        pairs: Sequence[Pair],
        index: int,
        groups: dict[int, GroupDef],
        depth: int,
        starts_entry: bool,
        out: list[DecodedField],
    ) -> int:
        """Decode pairs[index] (and the group it counts, if it is a count tag); the next index."""
        tag, value = pairs[index]
        position = len(out)
        out.append(DecodedField(tag, self.name(tag), value, self.meaning(tag, value), depth, starts_entry))
        group = groups.get(tag)
        if group is None:
            return index + 1
        index, entries = self._group(pairs, index + 1, group, depth + 1, out)
        if not value.isdigit() or int(value) != entries:
            note = f"announces {value}, has {entries} entries"
            out[position] = DecodedField(tag, self.name(tag), value, None, depth, starts_entry, note)
        return index

    def _group(
        self, pairs: Sequence[Pair], index: int, group: GroupDef, depth: int, out: list[DecodedField]
    ) -> tuple[int, int]:
        """Entries of one group, each starting at the delimiter tag; stops at the first non-member."""
        entries = 0
        members = frozenset(group.members)
        while index < len(pairs):
            tag = pairs[index][0]
            if tag == group.delimiter:
                entries += 1
            elif tag not in members or entries == 0:
                break
            index = self._field(pairs, index, group.groups, depth, tag == group.delimiter, out)
        return index, entries


def format_field(decoded: DecodedField) -> str:
    """`39 OrdStatus = 2 (FILLED)`; group entries indented, each entry's first field marked with `- `."""
    if decoded.depth == 0:
        indent = ""
    else:
        indent = "  " * (2 * decoded.depth - 1) + ("- " if decoded.starts_entry else "  ")
    text = f"{indent}{decoded.tag} {decoded.name} = {decoded.value}"
    if decoded.meaning is not None:
        text += f" ({decoded.meaning})"
    if decoded.note is not None:
        text += f"  [{decoded.note}]"
    return text


def format_decoded(fields: Iterable[DecodedField]) -> list[str]:
    return [format_field(decoded) for decoded in fields]


# -- XML --------------------------------------------------------------------------------------------


def _parse(root: ElementTree.Element, path: Path) -> Dictionary:
    fields: dict[int, FieldDef] = {}
    for element in root.iterfind("fields/field"):
        values = {v.get("enum", ""): v.get("description", "") for v in element.iterfind("value")}
        number = element.get("number", "")
        if not number.isdigit():
            raise DictionaryError(f"{path}: field {element.get('name')!r} has no valid number")
        fields[int(number)] = FieldDef(int(number), element.get("name", ""), element.get("type", ""), values)
    numbers = {f.name: f.number for f in fields.values()}
    components = {c.get("name", ""): c for c in root.iterfind("components/component")}
    layout = _Layout(numbers, components, path)
    messages: dict[str, MessageDef] = {}
    for element in root.iterfind("messages/message"):
        msg_type = element.get("msgtype", "")
        messages[msg_type] = MessageDef(msg_type, element.get("name", ""), layout.groups(element))
    return Dictionary(fields, messages)


@dataclass(frozen=True)
class _Layout:
    """Group layouts of a message, components expanded."""

    numbers: dict[str, int]
    components: dict[str, ElementTree.Element]
    path: Path

    def _number(self, name: str) -> int:
        try:
            return self.numbers[name]
        except KeyError:
            raise DictionaryError(f"{self.path}: {name!r} is used but not defined in <fields>") from None

    def _children(self, element: ElementTree.Element) -> Iterable[ElementTree.Element]:
        for child in element:
            if child.tag == "component":
                component = self.components.get(child.get("name", ""))
                if component is None:
                    raise DictionaryError(f"{self.path}: component {child.get('name')!r} is not defined")
                yield from self._children(component)
            else:
                yield child

    def groups(self, element: ElementTree.Element) -> dict[int, GroupDef]:
        found: dict[int, GroupDef] = {}
        for child in self._children(element):
            if child.tag == "group":
                group = self._group(child)
                found[group.count_tag] = group
        return found

    def _group(self, element: ElementTree.Element) -> GroupDef:
        members = tuple(
            self._number(child.get("name", ""))
            for child in self._children(element)
            if child.tag in ("field", "group")
        )
        if not members:
            raise DictionaryError(f"{self.path}: group {element.get('name')!r} has no fields")
        return GroupDef(self._number(element.get("name", "")), members, self.groups(element))
