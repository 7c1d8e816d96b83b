"""The GS1 Application Identifier table: what each AI holds and how long it is.

Transcribed from the GS1 General Specifications (section 3 and figure 7.8.5-2, the
predefined-length table). Each row is ``AI or AI range | components | title``; a
component is a character set (N digits, X the 82-character GS1 set, Y the 39-character
set, Z the 64-character base64url set), a length (``14``, ``..20`` or ``3..15``), an
optional ``[...]`` marker for a final optional part, and comma-separated content checks
implemented in :mod:`appliance.barcodes.gs1`.

The table is parsed on first use, so importing the package at register start costs
nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

# Data length (without the AI) of element strings whose AI starts with these two digits.
# Such element strings are never followed by an FNC1 separator (Gen Specs figure 7.8.5-2).
PREDEFINED_LENGTHS: dict[str, int] = {
    "00": 18,
    "01": 14,
    "02": 14,
    "03": 14,
    "04": 16,
    "11": 6,
    "12": 6,
    "13": 6,
    "14": 6,
    "15": 6,
    "16": 6,
    "17": 6,
    "18": 6,
    "19": 6,
    "20": 2,
    "31": 6,
    "32": 6,
    "33": 6,
    "34": 6,
    "35": 6,
    "36": 6,
    "41": 13,
}

CSET_82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
CSET_39 = frozenset("#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
CSET_64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
CSET_N = frozenset("0123456789")
CHARSETS: dict[str, frozenset[str]] = {"N": CSET_N, "X": CSET_82, "Y": CSET_39, "Z": CSET_64}

_TABLE = """
00        N18,csum                | SSCC
01        N14,csum                | GTIN
02        N14,csum                | CONTENT
03        N14,csum                | MTO GTIN
10        X..20                   | BATCH/LOT
11        N6,yymmd0               | PROD DATE
12        N6,yymmd0               | DUE DATE
13        N6,yymmd0               | PACK DATE
15        N6,yymmd0               | BEST BEFORE or BEST BY
16        N6,yymmd0               | SELL BY
17        N6,yymmd0               | USE BY or EXPIRY
20        N2                      | VARIANT
21        X..20                   | SERIAL
22        X..20                   | CPV
235       X..28                   | TPX
240       X..30                   | ADDITIONAL ID
241       X..30                   | CUST. PART No.
242       N..6                    | MTO VARIANT
243       X..20                   | PCN
250       X..30                   | SECONDARY SERIAL
251       X..30                   | REF. TO SOURCE
253       N13,csum [X..17]        | GDTI
254       X..20                   | GLN EXTENSION COMPONENT
255       N13,csum [N..12]        | GCN
30        N..8                    | VAR. COUNT
3100-3105 N6                      | NET WEIGHT (kg)
3110-3115 N6                      | LENGTH (m)
3120-3125 N6                      | WIDTH (m)
3130-3135 N6                      | HEIGHT (m)
3140-3145 N6                      | AREA (m2)
3150-3155 N6                      | NET VOLUME (l)
3160-3165 N6                      | NET VOLUME (m3)
3200-3205 N6                      | NET WEIGHT (lb)
3210-3215 N6                      | LENGTH (in)
3220-3225 N6                      | LENGTH (ft)
3230-3235 N6                      | LENGTH (yd)
3240-3245 N6                      | WIDTH (in)
3250-3255 N6                      | WIDTH (ft)
3260-3265 N6                      | WIDTH (yd)
3270-3275 N6                      | HEIGHT (in)
3280-3285 N6                      | HEIGHT (ft)
3290-3295 N6                      | HEIGHT (yd)
3300-3305 N6                      | GROSS WEIGHT (kg)
3310-3315 N6                      | LENGTH (m), log
3320-3325 N6                      | WIDTH (m), log
3330-3335 N6                      | HEIGHT (m), log
3340-3345 N6                      | AREA (m2), log
3350-3355 N6                      | VOLUME (l), log
3360-3365 N6                      | VOLUME (m3), log
3370-3375 N6                      | KG PER m2
3400-3405 N6                      | GROSS WEIGHT (lb)
3410-3415 N6                      | LENGTH (in), log
3420-3425 N6                      | LENGTH (ft), log
3430-3435 N6                      | LENGTH (yd), log
3440-3445 N6                      | WIDTH (in), log
3450-3455 N6                      | WIDTH (ft), log
3460-3465 N6                      | WIDTH (yd), log
3470-3475 N6                      | HEIGHT (in), log
3480-3485 N6                      | HEIGHT (ft), log
3490-3495 N6                      | HEIGHT (yd), log
3500-3505 N6                      | AREA (in2)
3510-3515 N6                      | AREA (ft2)
3520-3525 N6                      | AREA (yd2)
3530-3535 N6                      | AREA (in2), log
3540-3545 N6                      | AREA (ft2), log
3550-3555 N6                      | AREA (yd2), log
3560-3565 N6                      | NET WEIGHT (t oz)
3570-3575 N6                      | NET VOLUME (oz)
3600-3605 N6                      | NET VOLUME (qt)
3610-3615 N6                      | NET VOLUME (gal.)
3620-3625 N6                      | VOLUME (qt), log
3630-3635 N6                      | VOLUME (gal.), log
3640-3645 N6                      | VOLUME (in3)
3650-3655 N6                      | VOLUME (ft3)
3660-3665 N6                      | VOLUME (yd3)
3670-3675 N6                      | VOLUME (in3), log
3680-3685 N6                      | VOLUME (ft3), log
3690-3695 N6                      | VOLUME (yd3), log
37        N..8                    | COUNT
3900-3909 N..15                   | AMOUNT
3910-3919 N3,iso4217 N..15        | AMOUNT (ISO)
3920-3929 N..15                   | PRICE
3930-3939 N3,iso4217 N..15        | PRICE (ISO)
3940-3943 N4                      | PRCNT OFF
3950-3955 N6                      | PRICE/UoM
400       X..30                   | ORDER NUMBER
401       X..30                   | GINC
402       N17,csum                | GSIN
403       X..30                   | ROUTE
410       N13,csum                | SHIP TO LOC
411       N13,csum                | BILL TO
412       N13,csum                | PURCHASE FROM
413       N13,csum                | SHIP FOR LOC
414       N13,csum                | LOC No.
415       N13,csum                | PAY TO
416       N13,csum                | PROD/SERV LOC
417       N13,csum                | PARTY
420       X..20                   | SHIP TO POST
421       N3 X..9                 | SHIP TO POST (ISO)
422       N3                      | ORIGIN
423       N3..15,iso3166list      | COUNTRY - INITIAL PROCESS.
424       N3                      | COUNTRY - PROCESS.
425       N3..15,iso3166list      | COUNTRY - DISASSEMBLY
426       N3                      | COUNTRY - FULL PROCESS
427       X..3                    | ORIGIN SUBDIVISION
4300      X..35                   | SHIP TO COMP
4301      X..35                   | SHIP TO NAME
4302      X..70                   | SHIP TO ADD1
4303      X..70                   | SHIP TO ADD2
4304      X..70                   | SHIP TO SUB
4305      X..70                   | SHIP TO LOC
4306      X..70                   | SHIP TO REG
4307      X2                      | SHIP TO COUNTRY
4308      X..30                   | SHIP TO PHONE
4309      N10 N10                 | SHIP TO GEO
4310      X..35                   | RTN TO COMP
4311      X..35                   | RTN TO NAME
4312      X..70                   | RTN TO ADD1
4313      X..70                   | RTN TO ADD2
4314      X..70                   | RTN TO SUB
4315      X..70                   | RTN TO LOC
4316      X..70                   | RTN TO REG
4317      X2                      | RTN TO COUNTRY
4318      X..20                   | RTN TO POST
4319      X..30                   | RTN TO PHONE
4320      X..35                   | SRV DESCRIPTION
4321      N1,yesno                | DANGEROUS GOODS
4322      N1,yesno                | AUTH TO LEAVE
4323      N1,yesno                | SIG REQUIRED
4324      N6,yymmd0 N4,hhmm       | NOT BEF DEL DT
4325      N6,yymmd0 N4,hhmm       | NOT AFT DEL DT
4326      N6,yymmdd               | REL DATE
4330      N6 [X1],hyphen          | MAX TEMP F.
4331      N6 [X1],hyphen          | MAX TEMP C.
4332      N6 [X1],hyphen          | MIN TEMP F.
4333      N6 [X1],hyphen          | MIN TEMP C.
7001      N13                     | NSN
7002      X..30                   | MEAT CUT
7003      N6,yymmdd N4,hhmm       | EXPIRY TIME
7004      N..4                    | ACTIVE POTENCY
7005      X..12                   | CATCH AREA
7006      N6,yymmdd               | FIRST FREEZE DATE
7007      N6,yymmdd [N6],yymmdd   | HARVEST DATE
7008      X..3                    | AQUATIC SPECIES
7009      X..10                   | FISHING GEAR TYPE
7010      X..2                    | PROD METHOD
7011      N6,yymmdd [N4],hhmm     | TEST BY DATE
7020      X..20                   | REFURB LOT
7021      X..20                   | FUNC STAT
7022      X..20                   | REV STAT
7023      X..30                   | GIAI - ASSEMBLY
7030-7039 N3 X..27                | PROCESSOR # s
7040      N1 X3                   | UIC+EXT
7041      X..4                    | UFRGT UNIT TYPE
710       X..20                   | NHRN PZN
711       X..20                   | NHRN CIP
712       X..20                   | NHRN CN
713       X..20                   | NHRN DRN
714       X..20                   | NHRN AIM
715       X..20                   | NHRN NDC
716       X..20                   | NHRN AIC
7230-7239 X2 X..28                | CERT # s
7240      X..20                   | PROTOCOL
7241      N2                      | AIDC MEDIA TYPE
7242      X..25                   | VCN
7250      N8,yyyymmdd             | DOB
7251      N8,yyyymmdd N4,hhmm     | DOB TIME
7252      N1,iso5218              | BIO SEX
7253      X..40                   | FAMILY NAME
7254      X..40                   | GIVEN NAME
7255      X..10                   | SUFFIX
7256      X..90                   | FULL NAME
7257      X..70                   | PERSON ADDR
7258      N1 X1 N1                | BIRTH SEQUENCE
7259      X..40                   | BABY
8001      N14                     | DIMENSIONS
8002      X..20                   | CMT No.
8003      N1,zero N13,csum [X..16]| GRAI
8004      X..30                   | GIAI
8005      N6                      | PRICE PER UNIT
8006      N14,csum N4,pieceoftotal| ITIP
8007      X..34                   | IBAN
8008      N8,yymmddhh [N..4]      | PROD TIME
8009      X..50                   | OPTSEN
8010      Y..30                   | CPID
8011      N..12                   | CPID SERIAL
8012      X..20                   | VERSION
8013      X..25                   | GMN
8014      X..25                   | MUDI
8017      N18,csum                | GSRN - PROVIDER
8018      N18,csum                | GSRN - RECIPIENT
8019      N..10                   | SRIN
8020      X..25                   | REF No.
8026      N14,csum N4,pieceoftotal| ITIP CONTENT
8030      Z..90                   | DIGSIG
8110      X..70                   | COUPON CODE
8111      N4                      | POINTS
8112      X..70                   | PAPERLESS COUPON CODE
8200      X..70                   | PRODUCT URL
90        X..30                   | INTERNAL
91-99     X..90                   | INTERNAL
"""

_COMPONENT_RE = re.compile(r"^(\[)?([NXYZ])(\d+)?(?:\.\.(\d+))?(\])?((?:,[a-z0-9]+)*)$")


@dataclass(frozen=True, slots=True)
class Component:
    """One part of an AI's data field, e.g. the N3 currency of AI 3932."""

    charset: str
    min_len: int
    max_len: int
    optional: bool
    checks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AiSpec:
    ai: str
    title: str
    components: tuple[Component, ...]

    @property
    def min_len(self) -> int:
        return sum(c.min_len for c in self.components if not c.optional)

    @property
    def max_len(self) -> int:
        return sum(c.max_len for c in self.components)

    @property
    def predefined_length(self) -> int | None:
        """Data length when the AI needs no FNC1 after it, else ``None``."""
        return PREDEFINED_LENGTHS.get(self.ai[:2])


def _parse_component(text: str) -> Component:
    match = _COMPONENT_RE.match(text)
    if match is None:
        raise ValueError(f"bad component {text!r}")
    opening, charset, fixed, maximum, closing, checks = match.groups()
    if bool(opening) != bool(closing):
        raise ValueError(f"unbalanced [] in {text!r}")
    if maximum is None:
        if fixed is None:
            raise ValueError(f"no length in {text!r}")
        low = high = int(fixed)
    else:
        low, high = (int(fixed) if fixed else 1), int(maximum)
    return Component(charset, low, high, bool(opening), tuple(c for c in checks.split(",") if c))


def _expand(ai_field: str) -> list[str]:
    if "-" not in ai_field:
        return [ai_field]
    first, last = ai_field.split("-")
    width = len(first)
    return [str(n).zfill(width) for n in range(int(first), int(last) + 1)]


@cache
def ai_table() -> dict[str, AiSpec]:
    """AI → spec for every AI the parser knows."""
    table: dict[str, AiSpec] = {}
    for line in _TABLE.strip().splitlines():
        spec_text, _, title = line.partition("|")
        ai_field, *components = spec_text.split()
        parsed = tuple(_parse_component(c) for c in components)
        for ai in _expand(ai_field):
            table[ai] = AiSpec(ai, title.strip(), parsed)
    return table


def match_ai(text: str, pos: int) -> AiSpec | None:
    """The AI starting at ``text[pos]``; AIs are prefix-free, so the first hit is the AI."""
    table = ai_table()
    for length in (2, 3, 4):
        spec = table.get(text[pos : pos + length])
        if spec is not None:
            return spec
    return None
