"""Salesforce's error vocabulary: one exception the HTTP layer turns into the real JSON body."""

from __future__ import annotations

from typing import Any


class SalesforceError(Exception):
    """A request-level failure, answered as `[{"message", "errorCode", "fields"}]`."""

    def __init__(
        self, status: int, error_code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


def not_found() -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")


def unsupported_object(name: str) -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_type_in_soql(name: str, soql: str) -> SalesforceError:
    return SalesforceError(
        400,
        "INVALID_TYPE",
        f"\n{soql}\n{' ' * max(soql.find(name), 0)}^\nERROR at Row:1:Column:{soql.find(name) + 1}\n"
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
    )


def malformed_json(detail: str) -> SalesforceError:
    return SalesforceError(400, "JSON_PARSER_ERROR", detail)


def malformed_id(object_label: str, value: str) -> SalesforceError:
    return SalesforceError(
        400, "MALFORMED_ID", f"{object_label} ID: id value of incorrect type: {value}", ["Id"]
    )
