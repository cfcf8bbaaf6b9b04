"""The org's object model: objects and fields loaded from YAML, rendered as describe JSON.

Everything else in the sandbox (validation, storage, SOQL, Bulk) asks this module what an
object looks like, so the describe a client reads and the rules the org enforces cannot drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sf_sandbox.ids import POD, checksum_suffix

TEXT_TYPES = frozenset(
    {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
)
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}
DUCKDB_TYPES = {
    "boolean": "BOOLEAN",
    "int": "BIGINT",
    "double": "DOUBLE",
    "currency": "DOUBLE",
    "percent": "DOUBLE",
    "date": "DATE",
    "datetime": "TIMESTAMP",
}
AUDIT_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
# Describe keys a real org always sends that the sandbox has no feature behind: answered with
# the values an org without those features gives, so clients that read them do not break.
FIELD_DESCRIBE_DEFAULTS: dict[str, Any] = {
    "aiPredictionField": False,
    "calculatedFormula": None,
    "compoundFieldName": None,
    "controllerName": None,
    "defaultValueFormula": None,
    "dependentPicklist": False,
    "displayLocationInDecimal": False,
    "encrypted": False,
    "extraTypeInfo": None,
    "filteredLookupInfo": None,
    "formulaTreatNullNumberAsZero": False,
    "highScaleNumber": False,
    "htmlFormatted": False,
    "inlineHelpText": None,
    "mask": None,
    "maskType": None,
    "namePointing": False,
    "queryByDistance": False,
    "referenceTargetField": None,
    "restrictedDelete": False,
    "searchPrefilterable": False,
    "writeRequiresMasterRead": False,
}
OBJECT_DESCRIBE_DEFAULTS: dict[str, Any] = {
    "actionOverrides": [],
    "compactLayoutable": True,
    "defaultImplementation": None,
    "extendedBy": None,
    "extendsInterfaces": None,
    "implementedBy": None,
    "implementsInterfaces": None,
    "listviewable": None,
    "lookupLayoutable": None,
    "namedLayoutInfos": [],
    "networkScopeFieldName": None,
    "searchLayoutable": True,
}
DEFAULT_SCHEMA = Path(__file__).parent / "orgs" / "demo.yaml"


@dataclass
class Field:
    name: str
    type: str
    label: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    default_value: Any = None
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    case_sensitive: bool = False
    name_field: bool = False
    custom: bool = False
    picklist: list[str] = field(default_factory=list)
    restricted: bool = False
    reference_to: list[str] = field(default_factory=list)
    relationship_name: str | None = None
    calculated: bool = False
    auto_number: bool = False
    product_of: list[str] = field(default_factory=list)  # the org computes it: a * b

    @property
    def required_on_create(self) -> bool:
        """Salesforce's own rule: a createable, non-nillable field without a default."""
        return self.createable and not self.nillable and not self.defaulted_on_create

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES.get(self.type, "VARCHAR")

    @property
    def is_matchable(self) -> bool:
        """Fields an upsert may match on: Id, external ids and idLookup fields."""
        return self.external_id or self.id_lookup

    def describe(self) -> dict[str, Any]:
        text_like = self.type in TEXT_TYPES or self.type in ("id", "reference")
        return {
            **FIELD_DESCRIBE_DEFAULTS,
            "cascadeDelete": False,
            "permissionable": self.custom and self.nillable,
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "relationshipOrder": None,
            "aggregatable": True,
            "autoNumber": self.auto_number,
            "byteLength": self.length * 3 if text_like else 0,
            "calculated": self.calculated,
            "caseSensitive": self.case_sensitive,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default_value,
            "defaultedOnCreate": self.defaulted_on_create,
            "deprecatedAndHidden": False,
            "digits": 18 if self.type == "int" else 0,
            "externalId": self.external_id,
            "filterable": True,
            "groupable": self.type not in NUMBER_TYPES,
            "idLookup": self.id_lookup,
            "label": self.label,
            "length": self.length if text_like else 0,
            "name": self.name,
            "nameField": self.name_field,
            "nillable": self.nillable,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": value == self.default_value,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist
            ],
            "precision": self.precision,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.type != "textarea",
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
        }


@dataclass
class SObject:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    custom: bool
    fields: dict[str, Field]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True

    def __post_init__(self) -> None:
        self._by_lower = {name.lower(): f for name, f in self.fields.items()}
        self.id_checksum = checksum_suffix(self.key_prefix + POD)[0]

    def field(self, name: str) -> Field | None:
        """Field names are case-insensitive in every Salesforce API."""
        return self._by_lower.get(name.lower())

    def add_field(self, f: Field) -> None:
        self.fields[f.name] = f
        self._by_lower[f.name.lower()] = f

    def relationship(self, name: str) -> Field | None:
        """The lookup field behind a relationship name such as `Account` or `Checkout__r`."""
        lowered = name.lower()
        for f in self.fields.values():
            if f.relationship_name and f.relationship_name.lower() == lowered:
                return f
        return None

    def urls(self, version: str) -> dict[str, str]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "compactLayouts": f"{base}/describe/compactLayouts",
            "rowTemplate": f"{base}/{{ID}}",
            "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
            "describe": f"{base}/describe",
            "sobject": base,
        }

    def summary(self, version: str) -> dict[str, Any]:
        """The entry for this object in the global describe."""
        return {
            "associateEntityType": None,
            "associateParentEntity": None,
            "deepCloneable": False,
            "isInterface": False,
            "activateable": False,
            "createable": self.createable,
            "custom": self.custom,
            "customSetting": False,
            "deletable": self.deletable,
            "deprecatedAndHidden": False,
            "feedEnabled": False,
            "hasSubtypes": False,
            "isSubtype": False,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": True,
            "mergeable": self.name in ("Account", "Contact", "Lead"),
            "mruEnabled": True,
            "name": self.name,
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "searchable": True,
            "triggerable": True,
            "undeletable": self.deletable,
            "updateable": self.updateable,
            "urls": self.urls(version),
        }

    def describe(self, version: str, schema: Schema) -> dict[str, Any]:
        children = [
            {
                "cascadeDelete": False,
                "childSObject": child.name,
                "deprecatedAndHidden": False,
                "field": f.name,
                "junctionIdListNames": [],
                "junctionReferenceTo": [],
                "relationshipName": child.label_plural.replace(" ", "")
                if child.custom
                else f"{child.name}s",
                "restrictedDelete": False,
            }
            for child in schema.objects.values()
            for f in child.fields.values()
            if self.name in f.reference_to and f.name != "Id"
        ]
        return {
            **self.summary(version),
            **OBJECT_DESCRIBE_DEFAULTS,
            "childRelationships": children,
            "fields": [f.describe() for f in self.fields.values()],
            "recordTypeInfos": [],
            "supportedScopes": [{"label": "All", "name": "everything"}],
            "urls": self.urls(version),
        }


class Schema:
    """All objects of the org, looked up case-insensitively like Salesforce does."""

    def __init__(self, objects: dict[str, SObject]) -> None:
        self.objects = objects
        self._by_lower = {name.lower(): o for name, o in objects.items()}
        self._by_prefix = {o.key_prefix: o for o in objects.values()}

    def get(self, name: str) -> SObject | None:
        return self._by_lower.get(name.lower())

    def by_prefix(self, key_prefix: str) -> SObject | None:
        return self._by_prefix.get(key_prefix)

    def add(self, obj: SObject) -> None:
        self.objects[obj.name] = obj
        self._by_lower[obj.name.lower()] = obj
        self._by_prefix[obj.key_prefix] = obj

    def next_custom_prefix(self) -> str:
        """Custom objects get prefixes a00, a01, … like a real org."""
        n = 0
        while f"a{n:02d}" in self._by_prefix:
            n += 1
        return f"a{n:02d}"


def standard_fields(name: str, key_prefix: str) -> dict[str, Field]:
    """The system fields every object carries; they are read-only to the API."""

    def system(fname: str, ftype: str, label: str, **kw: Any) -> Field:
        return Field(
            name=fname,
            type=ftype,
            label=label,
            nillable=False,
            createable=False,
            updateable=False,
            defaulted_on_create=True,
            **kw,
        )

    return {
        "Id": system("Id", "id", f"{name} ID", length=18, id_lookup=True),
        "IsDeleted": system("IsDeleted", "boolean", "Deleted"),
        "CreatedDate": system("CreatedDate", "datetime", "Created Date"),
        "CreatedById": system(
            "CreatedById",
            "reference",
            "Created By ID",
            length=18,
            reference_to=["User"],
            relationship_name="CreatedBy",
        ),
        "LastModifiedDate": system("LastModifiedDate", "datetime", "Last Modified Date"),
        "LastModifiedById": system(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            length=18,
            reference_to=["User"],
            relationship_name="LastModifiedBy",
        ),
        "SystemModstamp": system("SystemModstamp", "datetime", "System Modstamp"),
    }


def field_from_spec(name: str, spec: dict[str, Any]) -> Field:
    """Build a Field from the compact YAML form used in `orgs/*.yaml`."""
    ftype = spec.get("type", "string")
    required = bool(spec.get("required", False))
    is_text = ftype in TEXT_TYPES
    default_length = {"email": 80, "phone": 40, "url": 255, "textarea": 32768}.get(ftype, 255)
    reference_to = spec.get("reference_to", [])
    if isinstance(reference_to, str):
        reference_to = [reference_to]
    relationship_name = spec.get("relationship_name")
    if ftype == "reference" and not relationship_name:
        relationship_name = name[:-3] + "__r" if name.endswith("__c") else name.removesuffix("Id")
    read_only = bool(spec.get("read_only", False))
    return Field(
        name=name,
        type=ftype,
        label=spec.get("label", name.removesuffix("__c").replace("_", " ")),
        length=int(
            spec.get("length", default_length if is_text else 18 if ftype == "reference" else 0)
        ),
        precision=int(spec.get("precision", 18 if ftype in NUMBER_TYPES else 0)),
        scale=int(spec.get("scale", 2 if ftype in ("currency",) else 0)),
        nillable=not required and ftype != "boolean",
        createable=not read_only,
        updateable=not read_only and not spec.get("create_only", False),
        defaulted_on_create=ftype == "boolean" or bool(spec.get("defaulted", False)),
        default_value=spec.get("default", False if ftype == "boolean" else None),
        external_id=bool(spec.get("external_id", False)),
        id_lookup=bool(spec.get("id_lookup", spec.get("external_id", False))),
        unique=bool(spec.get("unique", False)),
        case_sensitive=bool(spec.get("case_sensitive", False)),
        name_field=bool(spec.get("name_field", False)),
        custom=name.endswith("__c"),
        picklist=list(spec.get("picklist", [])),
        restricted=bool(spec.get("restricted", False)),
        reference_to=list(reference_to),
        relationship_name=relationship_name if ftype == "reference" else None,
        auto_number=bool(spec.get("auto_number", False)),
        product_of=list(spec.get("product_of", [])),
    )


def object_from_spec(name: str, spec: dict[str, Any]) -> SObject:
    fields = standard_fields(name, spec["key_prefix"])
    for fname, fspec in (spec.get("fields") or {}).items():
        fields[fname] = field_from_spec(fname, fspec or {})
    return SObject(
        name=name,
        label=spec.get("label", name.removesuffix("__c").replace("_", " ")),
        label_plural=spec.get("label_plural", spec.get("label", name) + "s"),
        key_prefix=spec["key_prefix"],
        custom=name.endswith("__c"),
        fields=fields,
        createable=bool(spec.get("createable", True)),
        updateable=bool(spec.get("updateable", True)),
        deletable=bool(spec.get("deletable", True)),
    )


def field_definition(f: Field) -> dict[str, Any]:
    """A field as plain data, to keep it in the state file."""
    return asdict(f)


def field_from_definition(definition: dict[str, Any]) -> Field:
    return Field(**definition)


def object_definition(obj: SObject) -> dict[str, Any]:
    """An object and all its fields as plain data, to keep it in the state file."""
    data = asdict(obj)
    data["fields"] = [field_definition(f) for f in obj.fields.values()]
    return data


def object_from_definition(definition: dict[str, Any]) -> SObject:
    fields = [field_from_definition(f) for f in definition["fields"]]
    return SObject(**{**definition, "fields": {f.name: f for f in fields}})


def load_schema(path: Path | None = None) -> Schema:
    """Read an org schema YAML file (`orgs/demo.yaml` by default)."""
    data = yaml.safe_load((path or DEFAULT_SCHEMA).read_text(encoding="utf-8"))
    objects = {name: object_from_spec(name, spec) for name, spec in data["objects"].items()}
    return Schema(objects)
