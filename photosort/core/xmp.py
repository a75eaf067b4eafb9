"""XMP packets: read the keywords photo managers write, and merge photosort's own into a packet without harm.

A photo manager keeps its keywords in XMP: digiKam, darktable and Lightroom
all read and write the flat ``dc:subject`` (``beach``) and the hierarchical
``lr:hierarchicalSubject`` (``photosort|beach``); digiKam also keeps its own
``digiKam:TagsList`` (``photosort/beach``). :class:`XmpPacket` parses a packet
(a sidecar file's bytes, or the packet embedded in a photo) with the standard
library, changes only photosort's own keywords and writes the rest back as it
was: other namespaces, ratings, other keywords, comments, processing
instructions, namespace prefixes and where they were declared, the
``<?xpacket?>`` wrapper and its padding. Unknown XML is kept element for
element; only quoting and the spelling of empty elements may change.

What is photosort's: every hierarchical keyword under ``photosort`` (in either
field) and the flat keywords photosort itself added, which it lists in its own
property ``photosort:AddedSubjects``. A flat keyword the packet held before
photosort came (``beach`` typed by the user) is never photosort's, so a later
re-sort never takes away a keyword someone else wrote. Replacing photosort's
keywords with the same ones changes nothing, so re-running is idempotent.

A packet with a DOCTYPE or entity declarations is refused (XMP has neither;
this keeps entity expansion attacks out); so is one that is not UTF-8.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from xml.parsers import expat

from .errors import SidecarError

log = logging.getLogger(__name__)

X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
LR = "http://ns.adobe.com/lightroom/1.0/"
DIGIKAM = "http://www.digikam.org/ns/1.0/"
MICROSOFT_PHOTO = ("http://ns.microsoft.com/photo/1.0/", "http://ns.microsoft.com/photo/1.0")
PHOTOSORT = "http://ns.photosort.app/1.0/"  # an identifier only; nothing is fetched from it
XML_NS = "http://www.w3.org/XML/1998/namespace"

PREFERRED_PREFIXES = {X: "x", RDF: "rdf", DC: "dc", LR: "lr", DIGIKAM: "digiKam", PHOTOSORT: "photosort",
                      XML_NS: "xml"}
ROOT_KEYWORD = "photosort"  # photosort's keywords live under this one: photosort|beach, photosort/beach
MAX_PACKET_BYTES = 16 << 20  # a sidecar is a few KB; darktable's with a long history a few hundred

PACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
PACKET_END = '\n<?xpacket end="w"?>\n'
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


@dataclass(frozen=True)
class Keywords:
    """The keywords of a packet: flat ones, and hierarchical ones as their levels (``("trip", "italy")``)."""

    flat: tuple[str, ...] = ()
    hierarchical: tuple[tuple[str, ...], ...] = ()

    def __or__(self, other: Keywords) -> Keywords:
        return Keywords(self.flat + other.flat, self.hierarchical + other.hierarchical)


@dataclass(frozen=True)
class KeywordChange:
    """What replacing photosort's keywords did to a packet (the hierarchical keywords, as written)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def own_keywords(category: str | None) -> tuple[str, str, str] | None:
    """The flat, Lightroom and digiKam keywords photosort writes for a category (None: unsure, none)."""
    if category is None:
        return None
    flat = clean_keyword(category)
    if not flat:
        return None
    level = flat.replace("|", "-").replace("/", "-")  # a separator inside a name would make a new level
    return flat, f"{ROOT_KEYWORD}|{level}", f"{ROOT_KEYWORD}/{level}"


def clean_keyword(text: str) -> str:
    """A keyword as XML can hold it: characters XML forbids removed, runs of white space made one space."""
    return " ".join(_XML_INVALID.sub("", text).split())


class XmpPacket:
    """One parsed XMP packet, changed in place and written back with :meth:`to_bytes`."""

    def __init__(self, root: ET.Element, declarations: dict[int, list[tuple[str, str]]], prolog: str,
                 epilog: str) -> None:
        self.root = root
        self._declarations = declarations  # id(element) -> the (prefix, uri) declared on it, in order
        self._prolog = prolog
        self._epilog = epilog
        self._parents = {id(child): parent for parent in root.iter() for child in parent}
        self._rdf = self._find_rdf()

    # ---- reading and writing ----------------------------------------------------------------
    @classmethod
    def new(cls) -> XmpPacket:
        """An empty packet, as a new sidecar starts: x:xmpmeta around rdf:RDF, in the xpacket wrapper."""
        root = ET.Element(_q(X, "xmpmeta"), {_q(X, "xmptk"): "photosort"})
        rdf = ET.SubElement(root, _q(RDF, "RDF"))
        root.text, rdf.tail = "\n ", "\n"
        return cls(root, {id(root): [("x", X)], id(rdf): [("rdf", RDF)]}, PACKET_BEGIN, PACKET_END)

    @classmethod
    def parse(cls, data: bytes) -> XmpPacket:
        """Parse a packet's bytes; :class:`SidecarError` when they are not XMP photosort can merge into safely."""
        text = _decode(data)
        declarations = _namespace_declarations(text)
        builder = ET.TreeBuilder(insert_comments=True, insert_pis=True)
        parser = ET.XMLParser(target=builder)
        try:
            parser.feed(text)
            root = parser.close()
        except ET.ParseError as exc:
            raise SidecarError(f"it is not well-formed XML ({exc})") from None
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        if len(elements) != len(declarations):  # cannot happen for one document; refuse rather than guess
            raise SidecarError("it could not be read consistently")
        start, end = _root_span(text)
        return cls(root, {id(e): d for e, d in zip(elements, declarations, strict=True) if d},
                   text[:start], text[end:])

    def to_bytes(self) -> bytes:
        return (self._prolog + _Serializer(self._declarations).element(self.root) + self._epilog).encode("utf-8")

    def _find_rdf(self) -> ET.Element:
        if self.root.tag == _q(RDF, "RDF"):
            return self.root
        rdf = self.root.find(f".//{_q(RDF, 'RDF')}")
        if rdf is not None:
            return rdf
        if self.root.tag not in (_q(X, "xmpmeta"), _q(X, "xapmeta")):
            raise SidecarError("it is XML but not XMP (no x:xmpmeta or rdf:RDF)")
        rdf = ET.Element(_q(RDF, "RDF"))
        self._append(self.root, rdf)
        self._declarations.setdefault(id(rdf), []).append(("rdf", RDF))
        return rdf

    # ---- properties -------------------------------------------------------------------------
    def array(self, ns: str | Sequence[str], name: str) -> list[str]:
        """The items of an array property (``dc:subject``), from every description that has it."""
        return [value for _, item, value in self._items(ns, name) if item is not None or value]

    def keywords(self) -> Keywords:
        """Flat ``dc:subject``; hierarchical ``lr:hierarchicalSubject`` (``|``), ``digiKam:TagsList`` and
        ``MicrosoftPhoto:LastKeywordXMP`` (``/``)."""
        flat = tuple(v.strip() for v in self.array(DC, "subject") if v.strip())
        levels = [_levels(v, "|") for v in self.array(LR, "hierarchicalSubject")]
        levels += [_levels(v, "/") for v in self.array(DIGIKAM, "TagsList")]
        levels += [_levels(v, "/") for v in self.array(MICROSOFT_PHOTO, "LastKeywordXMP")]
        return Keywords(flat, tuple(level for level in levels if level))

    def replace_own_keywords(self, category: str | None) -> KeywordChange:
        """Make photosort's keywords those of ``category`` (None: none), leaving every other keyword alone."""
        own = own_keywords(category)
        flat, lightroom, digikam = own if own is not None else (None, None, None)
        ours_before = set(self.array(PHOTOSORT, "AddedSubjects"))
        others = self._others_leaves()  # a flat keyword that is also the leaf of someone's hierarchy stays
        removed, before = self._sync(DC, "subject", "Bag", lambda v: v in ours_before and v not in others, flat)
        added = [flat] if flat is not None and flat not in before else []
        mine = flat is not None and (flat not in before or flat in ours_before)
        for ns, name, kind, separator, wanted in ((LR, "hierarchicalSubject", "Bag", "|", lightroom),
                                                  (DIGIKAM, "TagsList", "Seq", "/", digikam)):
            gone, present = self._sync(ns, name, kind, _is_own(separator), wanted)
            removed += gone
            added += [wanted] if wanted is not None and wanted not in present else []
        self._set_array(PHOTOSORT, "AddedSubjects", [flat] if mine and flat is not None else [])
        return KeywordChange(tuple(added), tuple(removed))

    def _others_leaves(self) -> set[str]:
        """The last level of every hierarchical keyword that is not photosort's."""
        return {levels[-1] for levels in self.keywords().hierarchical if levels[0] != ROOT_KEYWORD}

    def _sync(self, ns: str, name: str, kind: str, is_own: Callable[[str], bool],
              wanted: str | None) -> tuple[list[str], set[str]]:
        """Drop the own items other than ``wanted``, add ``wanted`` if missing; (removed, values before)."""
        items = self._items(ns, name)
        present = {value for _, _, value in items}
        removed = []
        for prop, item, value in items:
            if is_own(value) and value != wanted and item is not None:
                self._remove(item)
                removed.append(value)
                self._drop_if_empty(prop)
        if wanted is not None and wanted not in present:
            self._add_item(ns, name, kind, wanted)
        return removed, present

    def _set_array(self, ns: str, name: str, values: list[str]) -> None:
        """Make a property photosort owns hold exactly ``values`` (removed when empty)."""
        if [v for _, _, v in self._items(ns, name)] == values:
            return
        for description in self._descriptions():
            for prop in description.findall(_q(ns, name)):
                self._remove(prop)
        for value in values:
            self._add_item(ns, name, "Bag", value)

    def _items(self, ns: str | Sequence[str], name: str) -> list[tuple[ET.Element, ET.Element | None, str]]:
        """(property element, rdf:li or None for a plain value, value) for every item of the property."""
        out = []
        for uri in (ns,) if isinstance(ns, str) else ns:
            for description in self._descriptions():
                for prop in description.findall(_q(uri, name)):
                    container = _container(prop)
                    if container is None:
                        out.append((prop, None, (prop.text or "").strip()))
                        continue
                    out += [(prop, li, _item_value(li)) for li in container.findall(_q(RDF, "li"))]
                attribute = description.get(_q(uri, name))
                if attribute is not None:  # a simple value written as an attribute (not for arrays, but seen)
                    out.append((description, None, attribute.strip()))
        return out

    def _descriptions(self) -> list[ET.Element]:
        return self._rdf.findall(_q(RDF, "Description"))

    # ---- changing the tree ------------------------------------------------------------------
    def _add_item(self, ns: str, name: str, kind: str, value: str) -> None:
        """Append an item to the property's array, making the property (in the first description) if needed."""
        for description in self._descriptions():
            for prop in description.findall(_q(ns, name)):
                container = _container(prop)
                if container is None:
                    container = self._make_container(prop, kind)
                item = ET.Element(_q(RDF, "li"))
                item.text = value
                self._append(container, item)
                return
        description = self._first_description()
        self._declare(description, ns)
        prop = ET.Element(_q(ns, name))
        self._append(description, prop)
        container = self._make_container(prop, kind)
        item = ET.Element(_q(RDF, "li"))
        item.text = value
        self._append(container, item)

    def _make_container(self, prop: ET.Element, kind: str) -> ET.Element:
        """An rdf:Bag/Seq in ``prop``; a plain value it held becomes its first item."""
        value = (prop.text or "").strip()
        prop.text = None
        container = ET.Element(_q(RDF, kind))
        self._append(prop, container)
        if value:
            item = ET.Element(_q(RDF, "li"))
            item.text = value
            self._append(container, item)
        return container

    def _first_description(self) -> ET.Element:
        descriptions = self._descriptions()
        if descriptions:
            return descriptions[0]
        description = ET.Element(_q(RDF, "Description"), {_q(RDF, "about"): ""})
        self._append(self._rdf, description)
        return description

    def _declare(self, element: ET.Element, ns: str) -> None:
        """Declare ``ns`` on ``element`` unless it already is in scope there (a new property's namespace)."""
        path = self._path_to(element)
        if any(uri == ns for e in path for _, uri in self._declarations.get(id(e), [])):
            return
        taken = {p for e in path for p, _ in self._declarations.get(id(e), [])}
        prefix = _free_prefix(PREFERRED_PREFIXES.get(ns, "ns"), taken)
        self._declarations.setdefault(id(element), []).append((prefix, ns))

    def _append(self, parent: ET.Element, child: ET.Element) -> None:
        """Append with the indentation the siblings have (or one space per level, as ExifTool writes)."""
        kids = list(parent)
        if kids and (parent.text is None or not parent.text.strip()):
            last = kids[-1]
            closing = last.tail if last.tail is not None and not last.tail.strip() else None
            inner = parent.text if parent.text else None
            if closing is not None and inner is not None:
                last.tail, child.tail = inner, closing
        elif not kids and (parent.text is None or not parent.text.strip()):
            depth = len(self._path_to(parent)) - 1
            parent.text, child.tail = "\n" + " " * (depth + 1), "\n" + " " * depth
        parent.append(child)
        self._parents[id(child)] = parent

    def _remove(self, element: ET.Element) -> None:
        parent = self._parent_of(element)
        kids = list(parent)
        index = kids.index(element)
        if index == len(kids) - 1 and index > 0:
            kids[index - 1].tail = element.tail  # the closing indentation moves to the new last child
        elif len(kids) == 1 and (parent.text is None or not parent.text.strip()):
            parent.text = element.tail  # the only child: the closing tag takes its indentation
        parent.remove(element)
        for gone in element.iter():  # their ids may be reused by new elements once they are freed
            self._declarations.pop(id(gone), None)
            self._parents.pop(id(gone), None)

    def _drop_if_empty(self, prop: ET.Element) -> None:
        """A property whose array lost its last item goes too (an empty Bag is noise in a sidecar)."""
        container = _container(prop)
        if prop.tag == _q(RDF, "Description") or container is None or len(container):
            return
        self._remove(prop)

    def _path_to(self, element: ET.Element) -> list[ET.Element]:
        """The elements from the root down to ``element``, both included."""
        path = [element]
        while id(path[-1]) in self._parents:
            path.append(self._parents[id(path[-1])])
        return path[::-1]

    def _parent_of(self, element: ET.Element) -> ET.Element:
        return self._path_to(element)[-2]


def _is_own(separator: str) -> Callable[[str], bool]:
    return lambda value: value == ROOT_KEYWORD or value.startswith(ROOT_KEYWORD + separator)


def _levels(value: str, separator: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(separator) if part.strip())


def _container(prop: ET.Element) -> ET.Element | None:
    for kind in ("Bag", "Seq", "Alt"):
        found = prop.find(_q(RDF, kind))
        if found is not None:
            return found
    return None


def _item_value(item: ET.Element) -> str:
    """An rdf:li's value: its text, or its rdf:value when the item has qualifiers."""
    value = item.find(f".//{_q(RDF, 'value')}")
    return ((value.text if value is not None else item.text) or "").strip()


def _free_prefix(preferred: str, taken: set[str]) -> str:
    prefix, n = preferred, 1
    while prefix in taken:
        prefix, n = f"{preferred}{n}", n + 1
    return prefix


# ---- parsing helpers ----------------------------------------------------------------------------
def _decode(data: bytes) -> str:
    if len(data) > MAX_PACKET_BYTES:
        raise SidecarError(f"it is too large for XMP ({len(data) // 1_000_000} MB)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        raise SidecarError("it is not UTF-8 (UTF-16 or UTF-32 XMP is not supported)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SidecarError("it is not UTF-8 text") from None
    text = text.removeprefix("\ufeff")
    declared = re.match(r"<\?xml[^>]*encoding=[\"']([^\"']+)", text)
    if declared and declared.group(1).lower().replace("-", "") not in ("utf8", "usascii", "ascii"):
        raise SidecarError(f"it declares the encoding {declared.group(1)}; only UTF-8 XMP is supported")
    return text


def _namespace_declarations(text: str) -> list[list[tuple[str, str]]]:
    """The namespaces declared on each element, in document order; a DOCTYPE or entity is refused."""
    declared: list[list[tuple[str, str]]] = []
    pending: list[tuple[str, str]] = []

    def refuse(*_: object) -> None:
        raise SidecarError("it has a DOCTYPE or entity declarations, which XMP never has")

    def start_ns(prefix: str | None, uri: str | None) -> None:
        pending.append((prefix or "", uri or ""))

    def start(*_: object) -> None:
        declared.append(list(pending))
        pending.clear()

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartNamespaceDeclHandler = start_ns
    parser.StartElementHandler = start
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise SidecarError(f"it is not well-formed XML ({expat.errors.messages.get(exc.code, exc)})") from None
    return declared


def _root_span(text: str) -> tuple[int, int]:
    """Where the root element starts and ends: what lies around it (xpacket PIs, padding) is kept as it is."""
    i = 0
    while True:
        i = text.index("<", i)
        if text.startswith("<?", i):
            i = text.index("?>", i) + 2
        elif text.startswith("<!--", i):
            i = text.index("-->", i) + 3
        else:
            break
    end = len(text)
    while True:
        stripped = text[:end].rstrip()
        if stripped.endswith("?>") and "<?" in stripped:
            end = stripped.rindex("<?")
        elif stripped.endswith("-->") and "<!--" in stripped:
            end = stripped.rindex("<!--")
        else:
            return i, len(stripped)


# ---- writing ------------------------------------------------------------------------------------
class _Serializer:
    """Writes a tree back with each namespace declared where it was (ElementTree would move and rename them)."""

    def __init__(self, declarations: dict[int, list[tuple[str, str]]]) -> None:
        self._declarations = declarations

    def element(self, root: ET.Element) -> str:
        out: list[str] = []
        self._write(root, {"xml": XML_NS}, out)
        return "".join(out)

    def _write(self, e: ET.Element, scope: dict[str, str], out: list[str]) -> None:
        if e.tag is ET.Comment:
            out.append(f"<!--{e.text or ''}-->")
        elif e.tag is ET.ProcessingInstruction:
            out.append(f"<?{e.text or ''}?>")
        else:
            own = list(self._declarations.get(id(e), []))
            inner = dict(scope)
            inner.update(own)
            tag = self._name(e.tag, inner, own, attribute=False)
            attributes = [(self._name(k, inner, own, attribute=True), v) for k, v in e.attrib.items()]
            out.append(f"<{tag}")
            out += [f' xmlns:{p}="{_attr(u)}"' if p else f' xmlns="{_attr(u)}"' for p, u in own]
            out += [f' {k}="{_attr(v)}"' for k, v in attributes]
            if e.text is None and not len(e):
                out.append("/>")
            else:
                out.append(">" + _text(e.text or ""))
                for child in e:
                    self._write(child, inner, out)
                out.append(f"</{tag}>")
        out.append(_text(e.tail or ""))

    def _name(self, name: str, scope: dict[str, str], own: list[tuple[str, str]], attribute: bool) -> str:
        if not name.startswith("{"):
            if not attribute and scope.get(""):
                own.append(("", ""))
                scope[""] = ""
            return name
        uri, local = name[1:].split("}", 1)
        for prefix, bound in reversed(list(scope.items())):
            if bound == uri and (prefix or not attribute):
                return f"{prefix}:{local}" if prefix else local
        prefix = _free_prefix(PREFERRED_PREFIXES.get(uri, "ns"), set(scope))
        own.append((prefix, uri))
        scope[prefix] = uri
        return f"{prefix}:{local}"


def _text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _attr(text: str) -> str:
    return (_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;"))


def merged_keywords(packets: Iterable[XmpPacket]) -> Keywords:
    out = Keywords()
    for packet in packets:
        out = out | packet.keywords()
    return out
