"""The Metadata API (SOAP): `createMetadata` and `readMetadata` for custom objects and fields.

sf-assets creates the objects a sync writes to through simple-salesforce's `sf.mdapi`, a zeep
client of the real metadata WSDL, so this endpoint speaks that WSDL's wire format: a
SessionHeader, `metadata` elements typed by `xsi:type`, one SaveResult per component. A new
object or field is added to the live schema and its table at once, so describe shows it and
REST and Bulk can write to it in the next call, which is what the real org does after a
successful (synchronous) createMetadata; an org with a state file keeps it across restarts.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sf_sandbox.app import org_of
from sf_sandbox.errors import SalesforceError
from sf_sandbox.org import Org
from sf_sandbox.schema import Field, Schema, SObject, standard_fields

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
MD_NS = "http://soap.sforce.com/2006/04/metadata"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_TYPE = "text/xml;charset=UTF-8"
MAX_COMPONENTS = 10

# Metadata field types → describe types. Lengths are fixed for some, chosen by the caller for
# Text and LongTextArea; Number, Currency and Percent take precision and scale.
FIELD_TYPES = {
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Number": "double",
    "Currency": "currency",
    "Percent": "percent",
    "Checkbox": "boolean",
    "Date": "date",
    "DateTime": "datetime",
    "Email": "email",
    "Phone": "phone",
    "Url": "url",
    "Picklist": "picklist",
    "Lookup": "reference",
}
FIXED_LENGTHS = {"TextArea": 255, "Email": 80, "Phone": 40, "Url": 255, "Picklist": 255}
LENGTH_RANGES = {"Text": (1, 255), "LongTextArea": (256, 131072)}
NUMERIC_TYPES = frozenset({"Number", "Currency", "Percent"})
INDEXABLE_TYPES = frozenset({"Text", "Number", "Email"})  # may be external ids / unique
NAME_RULES = (
    "The name can only contain underscores and alphanumeric characters. It must be unique, "
    "begin with a letter, not include spaces, not end with an underscore, and not contain two "
    "consecutive underscores."
)
CUSTOM_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)__c")
MAX_NAME_LENGTH = 40  # without the __c suffix

# One createMetadata at a time: the duplicate check and the schema change must not interleave.
SCHEMA_CHANGE = threading.Lock()


class MetadataFault(Exception):
    """A call-level failure, answered as a SOAP fault (HTTP 500) rather than a SaveResult."""

    def __init__(self, code: str, message: str, *, client_error: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        # Envelope-level errors come from the SOAP stack itself, without a Salesforce code.
        self.faultcode = "soapenv:Client" if client_error else f"sf:{code}"
        self.faultstring = message if client_error else f"{code}: {message}"


class ComponentError(Exception):
    """Why one component of a createMetadata call was not saved; the others go on."""

    def __init__(self, status_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.fields = fields or []


def integrity(message: str, fields: list[str] | None = None) -> ComponentError:
    return ComponentError("FIELD_INTEGRITY_EXCEPTION", message, fields)


def missing(name: str) -> ComponentError:
    return ComponentError("REQUIRED_FIELD_MISSING", f"Required field is missing: {name}", [name])


# -- reading the request -------------------------------------------------------------------------


class Node:
    """An XML element read by local names, the way zeep's output is namespaced (`ns0:`)."""

    def __init__(self, element: ET.Element) -> None:
        self.element = element

    @property
    def name(self) -> str:
        return self.element.tag.rsplit("}", 1)[-1]

    @property
    def xsi_type(self) -> str:
        return (self.element.get(f"{{{XSI}}}type") or "").rsplit(":", 1)[-1]

    def children(self, name: str) -> list[Node]:
        return [Node(e) for e in self.element if e.tag.rsplit("}", 1)[-1] == name]

    def child(self, name: str) -> Node | None:
        found = self.children(name)
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        found = self.child(name)
        if found is None or found.element.text is None:
            return None
        return found.element.text.strip() or None

    def texts(self, name: str) -> list[str]:
        return [(n.element.text or "").strip() for n in self.children(name)]

    def flag(self, name: str) -> bool:
        return (self.text(name) or "").lower() == "true"

    def number(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(float(value))
        except ValueError:
            raise integrity(f"{name}: value not of required type: {value}", [name]) from None


def read_envelope(body: bytes) -> tuple[str | None, Node]:
    """The SessionHeader's session id and the operation element of the Body."""
    try:
        root = Node(ET.fromstring(body))
    except ET.ParseError as error:
        raise MetadataFault(
            "INVALID_XML", f"Unable to parse the request: {error}", client_error=True
        ) from None
    header, body_node = root.child("Header"), root.child("Body")
    session = header.child("SessionHeader") if header is not None else None
    session_id = session.text("sessionId") if session is not None else None
    operations = list(body_node.element) if body_node is not None else []
    if not operations:
        raise MetadataFault(
            "INVALID_XML", "The request has no operation in its Body", client_error=True
        )
    return session_id, Node(operations[0])


def authenticate(org: Org, session_id: str | None, path: str) -> None:
    """The SessionHeader must name a live session; the call is charged like any API call."""
    try:
        session = org.session_for(f"Bearer {session_id or ''}")
        org.count_call(session, path)
    except SalesforceError as error:
        if error.error_code == "INVALID_SESSION_ID":
            raise MetadataFault(
                "INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session"
            ) from None
        raise MetadataFault(error.error_code, error.message) from None


# -- building fields and objects ---------------------------------------------------------------


def check_name(name: str | None, what: str = "fullName") -> str:
    if not name:
        raise missing(what)
    if not CUSTOM_NAME.fullmatch(name) or len(name) - 3 > MAX_NAME_LENGTH:
        raise integrity(f"{name}: {NAME_RULES}", [what])
    return name


def field_length(kind: str, node: Node) -> int:
    if kind in FIXED_LENGTHS:
        return FIXED_LENGTHS[kind]
    if kind not in LENGTH_RANGES:
        return 18 if kind == "Lookup" else 0
    length = node.number("length")
    if length is None:
        raise integrity("Length is required for a field of type " + kind, ["length"])
    low, high = LENGTH_RANGES[kind]
    if not low <= length <= high:
        raise integrity(f"Length must be between {low} and {high}", ["length"])
    return length


def field_digits(kind: str, node: Node) -> tuple[int, int]:
    """Precision and scale of a number; zero for everything else."""
    if kind not in NUMERIC_TYPES:
        return 0, 0
    precision = node.number("precision")
    scale = node.number("scale") or 0
    if precision is None:
        raise integrity("Precision is required for a field of type " + kind, ["precision"])
    if not 1 <= precision <= 18:
        raise integrity("Precision must be between 1 and 18", ["precision"])
    if not 0 <= scale <= precision:
        raise integrity("Scale can not be greater than precision", ["scale"])
    return precision, scale


def picklist_values(node: Node) -> tuple[list[str], bool]:
    """The values and the restricted flag of a Picklist's valueSet."""
    value_set = node.child("valueSet")
    definition = value_set.child("valueSetDefinition") if value_set is not None else None
    values = (
        [v.text("fullName") for v in definition.children("value")] if definition is not None else []
    )
    if not values or None in values:
        raise integrity("A picklist field needs at least one value in valueSet", ["valueSet"])
    return [v for v in values if v], value_set is not None and value_set.flag("restricted")


def lookup_target(schema: Schema, node: Node, creating: str | None) -> tuple[str, str]:
    """The parent object and the `__r` relationship name of a Lookup field."""
    target = node.text("referenceTo")
    if target is None:
        raise missing("referenceTo")
    parent = schema.get(target)
    if parent is None and (creating is None or target.lower() != creating.lower()):
        raise integrity(
            f"referenceTo value of '{target}' does not resolve to a valid sObject type",
            ["referenceTo"],
        )
    relationship = node.text("relationshipName")
    if relationship is None:
        raise missing("relationshipName")
    return (parent.name if parent else creating or target), relationship + "__r"


def build_field(schema: Schema, api_name: str, node: Node, creating: str | None = None) -> Field:
    """A custom field from its metadata; `creating` names an object not in the schema yet."""
    kind = node.text("type")
    if kind is None:
        raise missing("type")
    if kind not in FIELD_TYPES:
        raise integrity(f"Field type {kind} is not supported by this org", ["type"])
    label = node.text("label")
    if label is None:
        raise missing("label")
    external_id, unique = node.flag("externalId"), node.flag("unique")
    if (external_id or unique) and kind not in INDEXABLE_TYPES:
        raise integrity("Only Text, Number and Email fields can be unique or an External ID")
    precision, scale = field_digits(kind, node)
    picklist, restricted = picklist_values(node) if kind == "Picklist" else ([], False)
    reference_to, relationship = (
        lookup_target(schema, node, creating) if kind == "Lookup" else (None, None)
    )
    checkbox = kind == "Checkbox"
    return Field(
        name=api_name,
        type=FIELD_TYPES[kind],
        label=label,
        length=field_length(kind, node),
        precision=precision,
        scale=scale,
        nillable=not checkbox and not node.flag("required"),
        defaulted_on_create=checkbox,
        default_value=node.flag("defaultValue") if checkbox else None,
        external_id=external_id,
        id_lookup=external_id,
        unique=unique,
        case_sensitive=node.flag("caseSensitive"),
        custom=True,
        picklist=picklist,
        restricted=restricted,
        reference_to=[reference_to] if reference_to else [],
        relationship_name=relationship,
    )


def name_field(node: Node | None) -> Field:
    """The object's Name: text the caller supplies, or a number the org assigns."""
    if node is None:
        raise missing("nameField")
    label, kind = node.text("label"), node.text("type")
    if label is None:
        raise missing("nameField.label")
    if kind not in ("Text", "AutoNumber"):
        raise integrity("The name field must be of type Text or AutoNumber", ["nameField.type"])
    auto = kind == "AutoNumber"
    return Field(
        name="Name",
        type="string",
        label=label,
        length=30 if auto else 80,
        nillable=False,
        createable=not auto,
        updateable=not auto,
        defaulted_on_create=auto,
        id_lookup=True,
        name_field=True,
        auto_number=auto,
    )


def owner_field() -> Field:
    """Custom objects are owned; the write engine fills the owner with the running user."""
    return Field(
        name="OwnerId",
        type="reference",
        label="Owner ID",
        length=18,
        nillable=False,
        defaulted_on_create=True,
        reference_to=["User"],
        relationship_name="Owner",
    )


def build_object(schema: Schema, node: Node) -> SObject:
    """A custom object with its Name, owner, system fields and the nested `fields`."""
    name = check_name(node.text("fullName"))
    if schema.get(name) is not None:
        raise ComponentError(
            "DUPLICATE_DEVELOPER_NAME",
            f"There is already a Custom Object with the name {name}",
            ["fullName"],
        )
    label, plural = node.text("label"), node.text("pluralLabel")
    if label is None:
        raise missing("label")
    if plural is None:
        raise missing("pluralLabel")
    key_prefix = schema.next_custom_prefix()
    fields = standard_fields(name, key_prefix)
    fields["Name"] = name_field(node.child("nameField"))
    fields["OwnerId"] = owner_field()
    for child in node.children("fields"):
        api_name = check_name((child.text("fullName") or "").split(".")[-1])
        if api_name.lower() in (f.lower() for f in fields):
            raise duplicate_field(api_name, label)
        fields[api_name] = build_field(schema, api_name, child, creating=name)
    return SObject(name, label, plural, key_prefix, custom=True, fields=fields)


def duplicate_field(api_name: str, object_label: str) -> ComponentError:
    return ComponentError(
        "DUPLICATE_DEVELOPER_NAME",
        f"There is already a field named {api_name.removesuffix('__c')} on {object_label}.",
        ["fullName"],
    )


# -- createMetadata ------------------------------------------------------------------------------


def create_object(org: Org, node: Node) -> None:
    org.add_object(build_object(org.schema, node))


def create_field(org: Org, node: Node) -> None:
    full_name = node.text("fullName") or ""
    object_name, _, api_name = full_name.partition(".")
    if not api_name:
        raise integrity(f"{full_name}: a CustomField's fullName is Object.Field__c", ["fullName"])
    sobject = org.schema.get(object_name)
    if sobject is None:
        raise ComponentError("INVALID_FIELD", f"No such object: {object_name}", ["fullName"])
    check_name(api_name)
    if sobject.field(api_name) is not None:
        raise duplicate_field(api_name, sobject.label)
    field = build_field(org.schema, api_name, node)
    if field.relationship_name and sobject.relationship(field.relationship_name):
        raise duplicate_field(api_name, sobject.label)
    org.add_field(sobject, field)


CREATORS: dict[str, Callable[[Org, Node], None]] = {
    "CustomObject": create_object,
    "CustomField": create_field,
}


@dataclass
class SaveResult:
    full_name: str
    error: ComponentError | None = None

    def xml(self) -> str:
        parts = []
        if self.error is not None:
            fields = "".join(f"<fields>{escape(f)}</fields>" for f in self.error.fields)
            parts.append(
                f"<errors>{fields}<message>{escape(self.error.message)}</message>"
                f"<statusCode>{self.error.status_code}</statusCode></errors>"
            )
        parts.append(f"<fullName>{escape(self.full_name)}</fullName>")
        parts.append(f"<success>{'false' if self.error else 'true'}</success>")
        return "<result>" + "".join(parts) + "</result>"


def save_component(org: Org, node: Node) -> SaveResult:
    """Create one component; its failure is reported in its result, not raised."""
    result = SaveResult(node.text("fullName") or "")
    creator = CREATORS.get(node.xsi_type)
    try:
        if creator is None:
            raise ComponentError(
                "INVALID_TYPE",
                f"This org creates CustomObject and CustomField metadata, not {node.xsi_type}",
            )
        with SCHEMA_CHANGE:
            creator(org, node)
    except ComponentError as error:
        result.error = error
    return result


def create_metadata(org: Org, operation: Node) -> str:
    components = operation.children("metadata")
    if len(components) > MAX_COMPONENTS:
        raise MetadataFault(
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COMPONENTS} records in this "
            "operation",
        )
    results = "".join(save_component(org, node).xml() for node in components)
    return f"<createMetadataResponse>{results}</createMetadataResponse>"


# -- readMetadata --------------------------------------------------------------------------------


def element(tag: str, value: object) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{tag}>{escape(str(value))}</{tag}>"


def metadata_type(field: Field) -> str:
    if field.type == "textarea":
        return "LongTextArea" if field.length > 255 else "TextArea"
    return next(k for k, v in FIELD_TYPES.items() if v == field.type and k != "TextArea")


def field_members(field: Field, full_name: str) -> Iterator[str]:
    """A field's CustomField members, in the WSDL's (alphabetical) order."""
    kind = metadata_type(field)
    yield element("fullName", full_name)
    if kind == "Checkbox":
        yield element("defaultValue", bool(field.default_value))
    yield element("externalId", field.external_id)
    yield element("label", field.label)
    if kind in LENGTH_RANGES:
        yield element("length", field.length)
    if kind in NUMERIC_TYPES:
        yield element("precision", field.precision)
    if field.reference_to:
        yield element("referenceTo", field.reference_to[0])
        yield element("relationshipName", (field.relationship_name or "").removesuffix("__r"))
    yield element("required", not field.nillable and kind != "Checkbox")
    if kind in NUMERIC_TYPES:
        yield element("scale", field.scale)
    yield element("type", kind)
    yield element("unique", field.unique)
    if field.picklist:
        values = "".join(
            f"<value>{element('fullName', v)}{element('default', False)}{element('label', v)}"
            "</value>"
            for v in field.picklist
        )
        yield (
            f"<valueSet>{element('restricted', field.restricted)}"
            f"<valueSetDefinition>{element('sorted', False)}{values}</valueSetDefinition>"
            "</valueSet>"
        )


def object_members(sobject: SObject) -> Iterator[str]:
    """An object's CustomObject members: its custom fields, labels and Name."""
    yield element("fullName", sobject.name)
    yield element("deploymentStatus", "Deployed")
    for field in sobject.fields.values():
        if field.custom:
            yield "<fields>" + "".join(field_members(field, field.name)) + "</fields>"
    yield element("label", sobject.label)
    name = sobject.fields.get("Name")
    if name is not None:
        kind = "AutoNumber" if name.auto_number else "Text"
        yield f"<nameField>{element('label', name.label)}{element('type', kind)}</nameField>"
    yield element("pluralLabel", sobject.label_plural)
    yield element("sharingModel", "ReadWrite")


def read_record(schema: Schema, kind: str, full_name: str) -> str:
    """One record of a readMetadata answer; an unknown name reads as an empty record."""
    members: list[str] = []
    if kind == "CustomObject" and (sobject := schema.get(full_name)) is not None:
        members = list(object_members(sobject))
    elif kind == "CustomField":
        object_name, _, api_name = full_name.partition(".")
        sobject = schema.get(object_name)
        field = sobject.field(api_name) if sobject is not None and api_name else None
        if field is not None and field.custom:
            members = list(field_members(field, f"{sobject.name}.{field.name}"))
    return f"<records xsi:type={quoteattr('tns:' + kind)}>{''.join(members)}</records>"


def read_metadata(org: Org, operation: Node) -> str:
    kind = operation.text("type") or ""
    names = [n for n in operation.texts("fullNames") if n]
    if len(names) > MAX_COMPONENTS:
        raise MetadataFault(
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COMPONENTS} records in this "
            "operation",
        )
    records = "".join(read_record(org.schema, kind, n) for n in names) if kind in CREATORS else ""
    return f"<readMetadataResponse><result>{records}</result></readMetadataResponse>"


# -- the endpoint --------------------------------------------------------------------------------

OPERATIONS: dict[str, Callable[[Org, Node], str]] = {
    "createMetadata": create_metadata,
    "readMetadata": read_metadata,
}


def envelope(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns="{MD_NS}" xmlns:tns="{MD_NS}" '
        f'xmlns:xsi="{XSI}"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>'
    )


def fault_response(fault: MetadataFault) -> Response:
    message = escape(fault.message)
    detail = (
        f'<detail><sf:UnexpectedErrorFault xmlns:sf="{MD_NS}" xsi:type="sf:UnexpectedErrorFault">'
        f"<sf:exceptionCode>{fault.code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:UnexpectedErrorFault></detail>"
    )
    body = (
        f'<soapenv:Fault xmlns:sf="{MD_NS}"><faultcode>{fault.faultcode}</faultcode>'
        f"<faultstring>{escape(fault.faultstring)}</faultstring>{detail}</soapenv:Fault>"
    )
    return Response(envelope(body), 500, media_type=XML_TYPE)


async def metadata_api(request: Request) -> Response:
    org = org_of(request)
    try:
        session_id, operation = read_envelope(await request.body())
        authenticate(org, session_id, request.url.path)
        handler = OPERATIONS.get(operation.name)
        if handler is None:
            raise MetadataFault(
                "INVALID_OPERATION",
                f"No operation available for request {{{MD_NS}}}{operation.name}, please check "
                "the WSDL for the service.",
                client_error=True,
            )
        return Response(envelope(handler(org, operation)), media_type=XML_TYPE)
    except MetadataFault as fault:
        return fault_response(fault)


def routes() -> list[BaseRoute]:
    return [
        Route("/services/Soap/m/{version}", metadata_api, methods=["POST"]),
        Route("/services/Soap/m/{version}/{org_id}", metadata_api, methods=["POST"]),
    ]
