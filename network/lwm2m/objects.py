"""The LwM2M 1.0 objects the security of seed 004 is about: Security (0), Server (1), Access
Control (2) and Device (3) (OMA-TS-LightweightM2M-V1_0 Appendix E.1-E.4, seed 004 §D.1).

Each object is an :class:`ObjectDef` of :class:`ResourceDef` (id, name, type, operations,
multiple, mandatory) plus the security properties the client enforces:

* object 0 is ``bootstrap_only``: "MUST only be changed by a LWM2M Bootstrap Server or SmartCard
  provisioning and MUST NOT be accessible by any other Server" (seed 004 §D.1); its resources
  have no DM operations at all;
* Secret Key (0/x/5) and SMS Binding Secret Keys (0/x/8) are ``secret``: "MUST NOT be readable
  by any server" (seed 004 §D.1), not even the bootstrap server (LwM2M 1.0 has no Bootstrap Read).

Value checks (:func:`check_resource`, :func:`check_instance`) raise :class:`InvalidValue`.

Choices where the spec is silent or wrong:

* Security object numbering: the seed's table gives ID 4 twice, leaves three IDs blank and gives
  Short Server ID 5. We use the published LwM2M 1.0 numbering (E.1): 0 URI, 1 Bootstrap-Server,
  2 Security Mode, 3 Public Key or Identity, 4 Server Public Key, 5 Secret Key, 6 SMS Security
  Mode, 7 SMS Binding Key Parameters, 8 SMS Binding Secret Keys, 9 Server SMS Number, 10 Short
  Server ID, 11 Client Hold Off Time.
* LwM2M Server SMS Number: the seed says Integer, published 1.0 says String; an MSISDN may carry
  a ``+`` and leading zeros, so it is a String of 1-20 digits with an optional leading ``+``.
* The URI must have the form ``coaps://host:port`` (``coap://`` only in NoSec mode, and NoSec
  only with ``coap://``), host an IPv4/``[IPv6]`` literal or FQDN, port 1-65535 given
  explicitly; a 0-byte URI has no such form and is refused.
* SMS Security Mode is 0-255 (1.0: 1 DTLS, 2 Secure Packet Structure, 3 NoSec, 255 proprietary).
* Opaque keys and certificates are bounded to 4096 bytes, strings to 255 bytes.
* SMS Binding Key Parameters are checked to be 6 bytes as the seed and 1.0 say, although the
  order they give (KIc 1, KID 1, SPI 2, TAR 3 bytes) adds up to 7: the layout belongs to the SMS
  binding module; this module only enforces the published size.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

from dmsim.base.errors import ProtocolError

MAX_ID = 65535
MAX_OPAQUE = 4096
MAX_STRING = 255
BINDINGS = frozenset({"U", "UQ", "S", "SQ", "US", "UQS"})


class InvalidValue(ProtocolError):
    """A resource value (or an instance) the object definition refuses; ``path`` names it."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.detail = message
        super().__init__(f"{path}: {message}")


class ResourceType(IntEnum):
    """Data types, OMA-TS-LightweightM2M-V1_0 Appendix C (``NONE`` for executable resources)."""

    STRING = 0
    INTEGER = 1
    FLOAT = 2
    BOOLEAN = 3
    OPAQUE = 4
    TIME = 5
    OBJLNK = 6
    NONE = 7


class Access(IntFlag):
    """ACL bits of object 2 resource 2 (OMA-TS-LightweightM2M-V1_0 §E.3)."""

    NONE = 0
    READ = 1
    WRITE = 2
    EXECUTE = 4
    DELETE = 8
    CREATE = 16


FULL_INSTANCE_ACCESS = Access.READ | Access.WRITE | Access.EXECUTE | Access.DELETE


class SecurityMode(IntEnum):
    """Security Mode, resource 0/x/2 (seed 004 §D.1)."""

    PSK = 0
    RPK = 1
    CERTIFICATE = 2
    NOSEC = 3


class Sec(IntEnum):
    """Resource IDs of the Security object 0 (published LwM2M 1.0 §E.1 numbering)."""

    URI = 0
    BOOTSTRAP = 1
    MODE = 2
    PUBLIC_KEY_OR_IDENTITY = 3
    SERVER_PUBLIC_KEY = 4
    SECRET_KEY = 5
    SMS_SECURITY_MODE = 6
    SMS_KEY_PARAMETERS = 7
    SMS_SECRET_KEYS = 8
    SMS_NUMBER = 9
    SHORT_SERVER_ID = 10
    HOLD_OFF = 11


class Srv(IntEnum):
    """Resource IDs of the Server object 1 (§E.2)."""

    SHORT_SERVER_ID = 0
    LIFETIME = 1
    DEFAULT_MIN_PERIOD = 2
    DEFAULT_MAX_PERIOD = 3
    DISABLE = 4
    DISABLE_TIMEOUT = 5
    NOTIFICATION_STORING = 6
    BINDING = 7
    UPDATE_TRIGGER = 8


class Acl(IntEnum):
    """Resource IDs of the Access Control object 2 (§E.3)."""

    OBJECT_ID = 0
    INSTANCE_ID = 1
    ACL = 2
    OWNER = 3


class Dev(IntEnum):
    """Resource IDs of the Device object 3 used here (§E.4)."""

    MANUFACTURER = 0
    MODEL = 1
    SERIAL = 2
    FIRMWARE = 3
    REBOOT = 4
    ERROR_CODE = 11
    CURRENT_TIME = 13
    BINDING_MODES = 16


class ObjectId(IntEnum):
    SECURITY = 0
    SERVER = 1
    ACCESS_CONTROL = 2
    DEVICE = 3


@dataclass(frozen=True, slots=True)
class ResourceDef:
    """One resource: ``operations`` is a subset of ``"RWE"`` ("" = none for any DM server)."""

    id: int
    name: str
    type: ResourceType
    operations: str
    multiple: bool = False
    mandatory: bool = True
    secret: bool = False

    @property
    def readable(self) -> bool:
        return "R" in self.operations

    @property
    def writable(self) -> bool:
        return "W" in self.operations

    @property
    def executable(self) -> bool:
        return "E" in self.operations


@dataclass(frozen=True, slots=True)
class ObjectDef:
    """One object: its resources by ID and whether only the bootstrap server may touch it."""

    id: int
    name: str
    multiple: bool
    mandatory: bool
    resources: dict[int, ResourceDef]
    bootstrap_only: bool = False

    def resource(self, rid: int) -> ResourceDef | None:
        return self.resources.get(rid)


def _obj(oid: int, name: str, multiple: bool, mandatory: bool, *res: ResourceDef,
         bootstrap_only: bool = False) -> ObjectDef:
    return ObjectDef(oid, name, multiple, mandatory, {r.id: r for r in res}, bootstrap_only)


T = ResourceType
SECURITY = _obj(
    0, "LWM2M Security", True, True,
    ResourceDef(Sec.URI, "LWM2M Server URI", T.STRING, ""),
    ResourceDef(Sec.BOOTSTRAP, "Bootstrap-Server", T.BOOLEAN, ""),
    ResourceDef(Sec.MODE, "Security Mode", T.INTEGER, ""),
    ResourceDef(Sec.PUBLIC_KEY_OR_IDENTITY, "Public Key or Identity", T.OPAQUE, ""),
    ResourceDef(Sec.SERVER_PUBLIC_KEY, "Server Public Key", T.OPAQUE, ""),
    ResourceDef(Sec.SECRET_KEY, "Secret Key", T.OPAQUE, "", secret=True),
    ResourceDef(Sec.SMS_SECURITY_MODE, "SMS Security Mode", T.INTEGER, "", mandatory=False),
    ResourceDef(Sec.SMS_KEY_PARAMETERS, "SMS Binding Key Parameters", T.OPAQUE, "", mandatory=False),
    ResourceDef(Sec.SMS_SECRET_KEYS, "SMS Binding Secret Keys", T.OPAQUE, "", mandatory=False, secret=True),
    ResourceDef(Sec.SMS_NUMBER, "LwM2M Server SMS Number", T.STRING, "", mandatory=False),
    ResourceDef(Sec.SHORT_SERVER_ID, "Short Server ID", T.INTEGER, "", mandatory=False),
    ResourceDef(Sec.HOLD_OFF, "Client Hold Off Time", T.INTEGER, "", mandatory=False),
    bootstrap_only=True)

SERVER = _obj(
    1, "LwM2M Server", True, True,
    ResourceDef(Srv.SHORT_SERVER_ID, "Short Server ID", T.INTEGER, "R"),
    ResourceDef(Srv.LIFETIME, "Lifetime", T.INTEGER, "RW"),
    ResourceDef(Srv.DEFAULT_MIN_PERIOD, "Default Minimum Period", T.INTEGER, "RW", mandatory=False),
    ResourceDef(Srv.DEFAULT_MAX_PERIOD, "Default Maximum Period", T.INTEGER, "RW", mandatory=False),
    ResourceDef(Srv.DISABLE, "Disable", T.NONE, "E", mandatory=False),
    ResourceDef(Srv.DISABLE_TIMEOUT, "Disable Timeout", T.INTEGER, "RW", mandatory=False),
    ResourceDef(Srv.NOTIFICATION_STORING, "Notification Storing When Disabled or Offline", T.BOOLEAN, "RW"),
    ResourceDef(Srv.BINDING, "Binding", T.STRING, "RW"),
    ResourceDef(Srv.UPDATE_TRIGGER, "Registration Update Trigger", T.NONE, "E"))

ACCESS_CONTROL = _obj(
    2, "LwM2M Access Control", True, False,
    ResourceDef(Acl.OBJECT_ID, "Object ID", T.INTEGER, "R"),
    ResourceDef(Acl.INSTANCE_ID, "Object Instance ID", T.INTEGER, "R"),
    ResourceDef(Acl.ACL, "ACL", T.INTEGER, "RW", multiple=True, mandatory=False),
    ResourceDef(Acl.OWNER, "Access Control Owner", T.INTEGER, "RW"))

DEVICE = _obj(
    3, "Device", False, True,
    ResourceDef(Dev.MANUFACTURER, "Manufacturer", T.STRING, "R", mandatory=False),
    ResourceDef(Dev.MODEL, "Model Number", T.STRING, "R", mandatory=False),
    ResourceDef(Dev.SERIAL, "Serial Number", T.STRING, "R", mandatory=False),
    ResourceDef(Dev.FIRMWARE, "Firmware Version", T.STRING, "R", mandatory=False),
    ResourceDef(Dev.REBOOT, "Reboot", T.NONE, "E"),
    ResourceDef(5, "Factory Reset", T.NONE, "E", mandatory=False),
    ResourceDef(6, "Available Power Sources", T.INTEGER, "R", multiple=True, mandatory=False),
    ResourceDef(7, "Power Source Voltage", T.INTEGER, "R", multiple=True, mandatory=False),
    ResourceDef(8, "Power Source Current", T.INTEGER, "R", multiple=True, mandatory=False),
    ResourceDef(9, "Battery Level", T.INTEGER, "R", mandatory=False),
    ResourceDef(10, "Memory Free", T.INTEGER, "R", mandatory=False),
    ResourceDef(Dev.ERROR_CODE, "Error Code", T.INTEGER, "R", multiple=True),
    ResourceDef(12, "Reset Error Code", T.NONE, "E", mandatory=False),
    ResourceDef(Dev.CURRENT_TIME, "Current Time", T.TIME, "RW", mandatory=False),
    ResourceDef(14, "UTC Offset", T.STRING, "RW", mandatory=False),
    ResourceDef(15, "Timezone", T.STRING, "RW", mandatory=False),
    ResourceDef(Dev.BINDING_MODES, "Supported Binding and Modes", T.STRING, "R"),
    ResourceDef(17, "Device Type", T.STRING, "R", mandatory=False),
    ResourceDef(18, "Hardware Version", T.STRING, "R", mandatory=False),
    ResourceDef(19, "Software Version", T.STRING, "R", mandatory=False),
    ResourceDef(20, "Battery Status", T.INTEGER, "R", mandatory=False),
    ResourceDef(21, "Memory Total", T.INTEGER, "R", mandatory=False),
    ResourceDef(22, "ExtDevInfo", T.OBJLNK, "R", multiple=True, mandatory=False))

OBJECTS: dict[int, ObjectDef] = {o.id: o for o in (SECURITY, SERVER, ACCESS_CONTROL, DEVICE)}


def path_text(*ids: int) -> str:
    return "/" + "/".join(str(i) for i in ids)


# -- value checks ---------------------------------------------------------------------------------

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$")
_MSISDN = re.compile(r"^\+?[0-9]{1,20}$")


def parse_uri(uri: str) -> tuple[str, str, int]:
    """Return (scheme, host, port) of ``coaps://host:port`` / ``coap://host:port`` (seed 004 §D.1)."""
    m = re.fullmatch(r"(coaps?)://(.+):([0-9]{1,5})/?", uri)
    if not m or not _HOST.match(m.group(2)):
        raise InvalidValue("/0/x/0", f"URI {uri!r} is not of the form coaps://host:port")
    port = int(m.group(3))
    if not 1 <= port <= 65535:
        raise InvalidValue("/0/x/0", f"URI port {port} is out of 1-65535")
    return m.group(1), m.group(2), port


def _python_type_ok(rtype: ResourceType, value: Any) -> bool:
    if rtype in (T.INTEGER, T.TIME):
        return isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < (1 << 63)
    if rtype == T.FLOAT:
        return isinstance(value, float)
    if rtype == T.BOOLEAN:
        return isinstance(value, bool)
    if rtype == T.STRING:
        return isinstance(value, str) and len(value.encode("utf-8")) <= MAX_STRING
    if rtype == T.OPAQUE:
        return isinstance(value, bytes) and len(value) <= MAX_OPAQUE
    if rtype == T.OBJLNK:
        return (isinstance(value, tuple) and len(value) == 2
                and all(isinstance(v, int) and 0 <= v <= MAX_ID for v in value))
    return False


def _in(value: int, low: int, high: int, what: str) -> str | None:
    return None if low <= value <= high else f"{what} {value} is out of {low}-{high}"


def _range_error(oid: int, rid: int, value: Any) -> str | None:
    """Return why ``value`` is out of the resource's range (E.1-E.4, seed 004 §D.1), or None."""
    if oid == 0:
        if rid == Sec.URI:
            parse_uri(value)
        elif rid == Sec.MODE:
            return _in(value, 0, 3, "Security Mode")
        elif rid == Sec.SMS_SECURITY_MODE:
            return _in(value, 0, 255, "SMS Security Mode")
        elif rid == Sec.SMS_KEY_PARAMETERS and len(value) != 6:
            return f"SMS Binding Key Parameters are {len(value)} bytes, not 6"
        elif rid == Sec.SMS_SECRET_KEYS and not 32 <= len(value) <= 48:
            return f"SMS Binding Secret Keys are {len(value)} bytes, not 32-48"
        elif rid == Sec.SMS_NUMBER and not _MSISDN.match(value):
            return f"SMS number {value!r} is not an MSISDN"
        elif rid == Sec.SHORT_SERVER_ID:
            return _in(value, 1, 65535, "Short Server ID")
        elif rid == Sec.HOLD_OFF:
            return _in(value, 0, 86400 * 365, "Client Hold Off Time")
    elif oid == 1:
        if rid == Srv.SHORT_SERVER_ID:
            return _in(value, 1, 65535, "Short Server ID")
        if rid in (Srv.LIFETIME, Srv.DEFAULT_MIN_PERIOD, Srv.DEFAULT_MAX_PERIOD, Srv.DISABLE_TIMEOUT):
            return _in(value, 0, 0x7FFFFFFF, "period")
        if rid == Srv.BINDING and value not in BINDINGS:
            return f"binding {value!r} is not one of {sorted(BINDINGS)}"
    elif oid == 2:
        if rid == Acl.OBJECT_ID:
            return _in(value, 1, 65534, "Object ID")
        if rid in (Acl.INSTANCE_ID, Acl.OWNER, Acl.ACL):
            return _in(value, 0, MAX_ID, "value")
    return None


def check_resource(oid: int, rid: int, value: Any, iid: int | str = "x") -> None:
    """Raise InvalidValue unless ``value`` fits resource ``rid`` of object ``oid``; a multiple
    resource's value is a dict of resource instance ID -> value."""
    odef = OBJECTS.get(oid)
    path = f"/{oid}/{iid}/{rid}"
    if odef is None:
        raise InvalidValue(path, "unknown object")
    rdef = odef.resource(rid)
    if rdef is None:
        raise InvalidValue(path, "unknown resource")
    if rdef.type == T.NONE:
        raise InvalidValue(path, "an executable resource has no value")
    values = value if rdef.multiple else {0: value}
    if rdef.multiple and not isinstance(value, dict):
        raise InvalidValue(path, "a multiple resource needs resource instances")
    for riid, v in values.items():
        if not (isinstance(riid, int) and 0 <= riid <= MAX_ID) or not _python_type_ok(rdef.type, v):
            raise InvalidValue(path, f"{v!r} is not a valid {rdef.type.name.lower()}")
        try:
            error = _range_error(oid, rid, v)
        except InvalidValue as exc:
            raise InvalidValue(path, exc.detail) from None
        if error:
            raise InvalidValue(path, error)


def check_instance(oid: int, iid: int, resources: dict[int, Any]) -> None:
    """Raise InvalidValue unless a whole instance is consistent: every value valid, mandatory
    resources present, and for object 0 the cross-resource rules of seed 004 §D.1."""
    odef = OBJECTS[oid]
    for rid, value in resources.items():
        check_resource(oid, rid, value, iid)
    for rdef in odef.resources.values():
        if rdef.mandatory and rdef.type != T.NONE and rdef.id not in resources:
            raise InvalidValue(path_text(oid, iid, rdef.id), f"mandatory {rdef.name} is missing")
    if oid == ObjectId.SECURITY:
        _check_security(iid, resources)


def _check_security(iid: int, r: dict[int, Any]) -> None:
    scheme = parse_uri(r[Sec.URI])[0]
    if (scheme == "coap") != (r[Sec.MODE] == SecurityMode.NOSEC):
        raise InvalidValue(f"/0/{iid}/0", f"{scheme}:// with Security Mode {r[Sec.MODE]}: coap:// goes with "
                                          "NoSec (3) only, coaps:// with a secured mode")
    if not r[Sec.BOOTSTRAP] and Sec.SHORT_SERVER_ID not in r:
        raise InvalidValue(f"/0/{iid}/10", "Short Server ID MUST be set when Bootstrap-Server is false")
    if r[Sec.MODE] == SecurityMode.PSK and not (r[Sec.PUBLIC_KEY_OR_IDENTITY] and r[Sec.SECRET_KEY]):
        raise InvalidValue(f"/0/{iid}/3", "PSK mode needs a PSK identity and a key (seed 004 §D.1.1.1)")
    if (Sec.SMS_KEY_PARAMETERS in r) != (Sec.SMS_SECRET_KEYS in r):
        raise InvalidValue(f"/0/{iid}/7", "SMS Binding Key Parameters and Secret Keys go together")
