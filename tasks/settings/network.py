"""The types of network names and URLs in settings: DNS names, ports, e-mail addresses,
URLs and web paths, nginx upstreams, LDAP DNs, login providers' names, the database URL.

URLs reach shell lines and config files as the deploy renders them (``str(url)``, which
pydantic normalises): both what is given and what is rendered are checked."""

import re
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, HttpUrl, StrictInt, StrictStr, ValidationError

from tasks.layout import LOCAL_SERVICES
from tasks.settings.constants import (
    DB_URL,
    DOMAIN,
    EMAIL,
    GITHUB_ORG,
    LDAP_DN,
    LDAP_DN_TEMPLATE,
    LOOPBACK_NAMES,
    OIDC_NAME,
    UPSTREAM,
    URL_CHAR,
    URL_PATH,
    URL_TEXT,
)
from tasks.settings.types import Kind, whole


def _email(value: str) -> str:
    match = EMAIL.fullmatch(value)
    if not match or not DOMAIN.fullmatch(match["domain"]) or "." not in match["domain"]:
        raise ValueError(
            "must be an e-mail address such as admin@example.org: letters, digits and . _ % + - "
            "(not first: . -), then @ and a DNS name with a dot (lowercase)"
        )
    return value


def _url_path(value: str) -> str:
    if not URL_PATH.fullmatch(value) or {".", ".."} & set(value.split("/")):
        raise ValueError("must be a URL path that starts and ends with / (such as /rstudio/): letters, digits, . _ ~ -")
    return value


def _url_text(value: Any) -> Any:
    """The URL as given: pydantic would drop tabs and newlines, and escape spaces, silently."""
    if isinstance(value, HttpUrl):
        value = str(value)
    if isinstance(value, str) and value and not URL_TEXT.fullmatch(value):
        bad = next(c for c in re.sub(r"%[0-9A-Fa-f]{2}", "", value) if not URL_CHAR.fullmatch(c))
        found = "a % that starts no %XX escape" if bad == "%" else repr(bad)
        raise ValueError(f"must be an http(s) URL of letters, digits, -._~:/?#[]@!+,= and %XX escapes; it has {found}")
    return value


def _url(value: HttpUrl) -> HttpUrl:
    if value.username is not None or value.password is not None:
        raise ValueError("must not hold a user name or password (user:password@); give credentials another way")
    # What the deploy renders is str(value), which pydantic normalised: check it too.
    if not URL_TEXT.fullmatch(str(value)):
        raise ValueError("must be an http(s) URL of letters, digits, -._~:/?#[]@!+,= and %XX escapes")
    return value


def _issuer(value: str) -> str:
    """An issuer is compared with the platform's iss claim as written: it is checked as an https URL,
    and kept as given (pydantic would add a / to a bare host)."""
    _url_text(value)
    try:
        url = HttpUrl(value)
    except ValidationError:
        raise ValueError("must be an https:// URL such as https://lms.example.org") from None
    _https(_url(url))
    if url.query is not None or url.fragment is not None:
        raise ValueError("must have no query (?) or fragment (#): the platform's issuer identifier")
    return value


def _https(value: HttpUrl) -> HttpUrl:
    if value.scheme != "https":
        raise ValueError("must be an https:// URL (tokens and secrets cross it)")
    return value


UPSTREAM_FORM = (
    "must be http(s)://host[:port]/path/ with a lowercase DNS name or an IP address as host and a path "
    "ending in / (letters, digits, . _ ~ -); no query, fragment, user:password or nginx variables"
)


def _upstream_problem(text: str) -> str | None:
    match = UPSTREAM.fullmatch(text)
    if not match:
        return UPSTREAM_FORM
    host = match["host"]
    if host.startswith("["):
        try:
            IPv6Address(host[1:-1])
        except ValueError:
            return f"{UPSTREAM_FORM}; {host} is not an IPv6 address"
    else:
        try:
            IPv4Address(host)
        except ValueError:
            # A name ending in a number is an address in another spelling (2130706433, 127.1, 0x7f.1).
            if not DOMAIN.fullmatch(host) or not host.rsplit(".", 1)[-1][0].isalpha():
                return f"{UPSTREAM_FORM}; {host!r} is neither a DNS name nor a dotted IPv4 address"
    if match["port"] and int(match["port"]) > 65535:
        return "the port must be 1-65535"
    if {".", ".."} & set((match["path"] or "/").split("/")):
        return f"{UPSTREAM_FORM}; no . or .. parts"
    return None


def local_host(host: str) -> bool:
    """Whether host (as in a URL) is this machine's loopback or unspecified address, or localhost."""
    host = host.removeprefix("[").removesuffix("]")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ip_address(host)
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _upstream_text(value: Any) -> Any:
    value = _url_text(value)
    if isinstance(value, str) and (problem := _upstream_problem(value)):
        raise ValueError(problem)
    return value


def _upstream(value: HttpUrl) -> HttpUrl:
    _url(value)
    if problem := _upstream_problem(str(value)):
        raise ValueError(problem)
    if local_host(value.host or "") and value.port in LOCAL_SERVICES:
        # nginx would serve them to anyone, past the hub's sign-in and monitoring's firewall.
        raise ValueError(f"must not point at {LOCAL_SERVICES[value.port]} (port {value.port} on this host)")
    return value


Port = Annotated[StrictInt, Field(ge=1, le=65535), Kind("port")]
DomainName = Annotated[
    StrictStr,
    whole(DOMAIN, "must be a DNS name such as hub.example.org (lowercase letters, digits, dots, hyphens)"),
    Kind("DNS name"),
]
NodeName = Annotated[StrictStr, whole(DOMAIN, "must be a node's inventory name"), Kind("inventory name")]
EmailAddress = Annotated[StrictStr, AfterValidator(_email), Kind("e-mail address")]
UrlPath = Annotated[StrictStr, AfterValidator(_url_path), Kind("URL path")]
Url = Annotated[HttpUrl, BeforeValidator(_url_text), AfterValidator(_url), Kind("http(s) URL")]
HttpsUrl = Annotated[Url, AfterValidator(_https), Kind("https URL")]
Upstream = Annotated[HttpUrl, BeforeValidator(_upstream_text), AfterValidator(_upstream), Kind("http(s) URL")]
LdapDn = Annotated[
    StrictStr,
    whole(
        LDAP_DN,
        "must be an LDAP DN such as cn=ml-2026,ou=groups,dc=example,dc=org "
        "(attribute=value parts; values of letters, digits, space . _ -)",
    ),
    Kind("LDAP DN"),
]
LdapDnTemplate = Annotated[
    StrictStr,
    whole(
        LDAP_DN_TEMPLATE,
        "must be the DN a user binds as, with {username} as one whole value, such as "
        "uid={username},ou=people,dc=example,dc=org",
    ),
    Kind("LDAP DN template"),
]
OidcClientId = Annotated[
    StrictStr, whole(OIDC_NAME, "must be letters, digits and . _ : / @ - (the provider's id)"), Kind("client id")
]
GitHubClientId = Annotated[
    StrictStr, whole(OIDC_NAME, "must be letters, digits and . _ : / @ - (the app's id)"), Kind("client id")
]
OidcScope = Annotated[StrictStr, whole(OIDC_NAME, "must be a scope name"), Kind("scope")]
OidcClaim = Annotated[StrictStr, whole(OIDC_NAME, "must be a claim name"), Kind("claim name")]


def _custom_claim(claim: str) -> str:
    # name, given_name, email, ...: the person edits them at the platform, and would pick a name.
    if not claim.startswith("custom_") or claim == "custom_":
        raise ValueError(
            "must be a custom parameter's claim (custom_NAME, such as custom_username): a custom parameter is "
            "set by the platform's admins, while name, given_name, email and the like are the person's to edit"
        )
    return claim


LtiClaim = Annotated[OidcClaim, AfterValidator(_custom_claim), Kind("custom claim name")]
OidcGroup = Annotated[StrictStr, whole(OIDC_NAME, "must be a group name of the provider"), Kind("group name")]
ProviderAccount = Annotated[
    StrictStr,
    whole(OIDC_NAME, "must be the provider's account id: OpenID Connect's sub, GitHub's numeric id"),
    Kind("account id"),
]
LtiIssuer = Annotated[StrictStr, AfterValidator(_issuer), Kind("https URL")]
LtiId = Annotated[
    StrictStr,
    whole(OIDC_NAME, "must be the platform's id: letters, digits and . _ : / @ - (at most 200)"),
    Kind("platform id"),
]
GitHubOrganization = Annotated[
    StrictStr, whole(GITHUB_ORG, "must be a GitHub organization name (letters, digits, -)"), Kind("organization name")
]
DbUrl = Annotated[
    StrictStr,
    whole(
        DB_URL,
        'must be "postgresql:///NAME" (the hub server\'s own PostgreSQL, NAME of a-z 0-9 _); '
        "another server is not supported yet",
    ),
    Kind("PostgreSQL URL"),
]
