"""Write a library of UN General Debate speeches (the newest sessions first) as Markdown articles for policybot.

Usage: .venv/bin/python -m bench.ungdc_library --ungdc ../shared/data/ungdc/ungdc_2015_2024.jsonl --out /tmp/ungdc_library
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

DEFAULT_COUNT = 400

# Every country code in ungdc_2015_2024.jsonl (sessions 70-79), with the name members would use.
COUNTRIES = {
    "AFG": "Afghanistan",
    "AGO": "Angola",
    "ALB": "Albania",
    "AND": "Andorra",
    "ARE": "United Arab Emirates",
    "ARG": "Argentina",
    "ARM": "Armenia",
    "ATG": "Antigua and Barbuda",
    "AUS": "Australia",
    "AUT": "Austria",
    "AZE": "Azerbaijan",
    "BDI": "Burundi",
    "BEL": "Belgium",
    "BEN": "Benin",
    "BFA": "Burkina Faso",
    "BGD": "Bangladesh",
    "BGR": "Bulgaria",
    "BHR": "Bahrain",
    "BHS": "Bahamas",
    "BIH": "Bosnia and Herzegovina",
    "BLR": "Belarus",
    "BLZ": "Belize",
    "BOL": "Bolivia",
    "BRA": "Brazil",
    "BRB": "Barbados",
    "BRN": "Brunei Darussalam",
    "BTN": "Bhutan",
    "BWA": "Botswana",
    "CAF": "Central African Republic",
    "CAN": "Canada",
    "CHE": "Switzerland",
    "CHL": "Chile",
    "CHN": "China",
    "CIV": "Côte d'Ivoire",
    "CMR": "Cameroon",
    "COD": "Democratic Republic of the Congo",
    "COG": "Republic of the Congo",
    "COL": "Colombia",
    "COM": "Comoros",
    "CPV": "Cabo Verde",
    "CRI": "Costa Rica",
    "CUB": "Cuba",
    "CYP": "Cyprus",
    "CZE": "Czechia",
    "DEU": "Germany",
    "DJI": "Djibouti",
    "DMA": "Dominica",
    "DNK": "Denmark",
    "DOM": "Dominican Republic",
    "DZA": "Algeria",
    "ECU": "Ecuador",
    "EGY": "Egypt",
    "ERI": "Eritrea",
    "ESP": "Spain",
    "EST": "Estonia",
    "ETH": "Ethiopia",
    "EU": "European Union",
    "FIN": "Finland",
    "FJI": "Fiji",
    "FRA": "France",
    "FSM": "Micronesia",
    "GAB": "Gabon",
    "GBR": "United Kingdom",
    "GEO": "Georgia",
    "GHA": "Ghana",
    "GIN": "Guinea",
    "GMB": "Gambia",
    "GNB": "Guinea-Bissau",
    "GNQ": "Equatorial Guinea",
    "GRC": "Greece",
    "GRD": "Grenada",
    "GTM": "Guatemala",
    "GUY": "Guyana",
    "HND": "Honduras",
    "HRV": "Croatia",
    "HTI": "Haiti",
    "HUN": "Hungary",
    "IDN": "Indonesia",
    "IND": "India",
    "IRL": "Ireland",
    "IRN": "Iran",
    "IRQ": "Iraq",
    "ISL": "Iceland",
    "ISR": "Israel",
    "ITA": "Italy",
    "JAM": "Jamaica",
    "JOR": "Jordan",
    "JPN": "Japan",
    "KAZ": "Kazakhstan",
    "KEN": "Kenya",
    "KGZ": "Kyrgyzstan",
    "KHM": "Cambodia",
    "KIR": "Kiribati",
    "KNA": "Saint Kitts and Nevis",
    "KOR": "South Korea",
    "KWT": "Kuwait",
    "LAO": "Laos",
    "LBN": "Lebanon",
    "LBR": "Liberia",
    "LBY": "Libya",
    "LCA": "Saint Lucia",
    "LIE": "Liechtenstein",
    "LKA": "Sri Lanka",
    "LSO": "Lesotho",
    "LTU": "Lithuania",
    "LUX": "Luxembourg",
    "LVA": "Latvia",
    "MAR": "Morocco",
    "MCO": "Monaco",
    "MDA": "Moldova",
    "MDG": "Madagascar",
    "MDV": "Maldives",
    "MEX": "Mexico",
    "MHL": "Marshall Islands",
    "MKD": "North Macedonia",
    "MLI": "Mali",
    "MLT": "Malta",
    "MMR": "Myanmar",
    "MNE": "Montenegro",
    "MNG": "Mongolia",
    "MOZ": "Mozambique",
    "MRT": "Mauritania",
    "MUS": "Mauritius",
    "MWI": "Malawi",
    "MYS": "Malaysia",
    "NAM": "Namibia",
    "NER": "Niger",
    "NGA": "Nigeria",
    "NIC": "Nicaragua",
    "NLD": "Netherlands",
    "NOR": "Norway",
    "NPL": "Nepal",
    "NRU": "Nauru",
    "NZL": "New Zealand",
    "OMN": "Oman",
    "PAK": "Pakistan",
    "PAN": "Panama",
    "PER": "Peru",
    "PHL": "Philippines",
    "PLW": "Palau",
    "PNG": "Papua New Guinea",
    "POL": "Poland",
    "PRK": "North Korea",
    "PRT": "Portugal",
    "PRY": "Paraguay",
    "PSE": "State of Palestine",
    "QAT": "Qatar",
    "ROU": "Romania",
    "RUS": "Russia",
    "RWA": "Rwanda",
    "SAU": "Saudi Arabia",
    "SDN": "Sudan",
    "SEN": "Senegal",
    "SGP": "Singapore",
    "SLB": "Solomon Islands",
    "SLE": "Sierra Leone",
    "SLV": "El Salvador",
    "SMR": "San Marino",
    "SOM": "Somalia",
    "SRB": "Serbia",
    "SSD": "South Sudan",
    "STP": "Sao Tome and Principe",
    "SUR": "Suriname",
    "SVK": "Slovakia",
    "SVN": "Slovenia",
    "SWE": "Sweden",
    "SWZ": "Eswatini",
    "SYC": "Seychelles",
    "SYR": "Syria",
    "TCD": "Chad",
    "TGO": "Togo",
    "THA": "Thailand",
    "TJK": "Tajikistan",
    "TKM": "Turkmenistan",
    "TLS": "Timor-Leste",
    "TON": "Tonga",
    "TTO": "Trinidad and Tobago",
    "TUN": "Tunisia",
    "TUR": "Türkiye",
    "TUV": "Tuvalu",
    "TZA": "Tanzania",
    "UGA": "Uganda",
    "UKR": "Ukraine",
    "URY": "Uruguay",
    "USA": "United States",
    "UZB": "Uzbekistan",
    "VAT": "Holy See",
    "VCT": "Saint Vincent and the Grenadines",
    "VEN": "Venezuela",
    "VNM": "Viet Nam",
    "VUT": "Vanuatu",
    "WSM": "Samoa",
    "YEM": "Yemen",
    "ZAF": "South Africa",
    "ZMB": "Zambia",
    "ZWE": "Zimbabwe",
}

# A line that ends a sentence: terminal punctuation, then any closing quotes, brackets or Markdown emphasis.
_LINE_ENDS_SENTENCE = re.compile(r"[.!?:;\u2026][\"'\u201d\u2019)\]*_]*$")


def paragraphs(text: str) -> list[str]:
    """The speech's paragraphs, each on one line.

    Sessions up to 78 hold one paragraph a line; many session-79 texts are hard-wrapped, some with
    blank lines in mid-sentence. So lines (blank ones ignored) are joined until a line ends a sentence
    and the next one does not start in lower case; a hyphen at a line's end joins without a space.
    """
    result: list[str] = []
    for raw in re.split(r"[\n\f\r\v]", text):
        line = " ".join(raw.split())
        if not line:
            continue
        if result and (not _LINE_ENDS_SENTENCE.search(result[-1]) or line[0].islower()):
            joiner = "" if re.search(r"\w-$", result[-1]) and line[0].islower() else " "
            result[-1] = result[-1] + joiner + line
        else:
            result.append(line)
    return result


def select(speeches: list[dict], count: int) -> list[dict]:
    """The newest `count` speeches: whole sessions from the latest back, the last one cut in id order."""
    return sorted(speeches, key=lambda s: (-int(s["session"]), s["id"]))[:count]


def file_stem(speech_id: str) -> str:
    """'ungdc/KOR_78_2023' -> 'KOR_78_2023'."""
    return speech_id.rsplit("/", 1)[-1]


def markdown(speech: dict) -> str:
    """The article file: YAML front matter (JSON strings are valid YAML), then the paragraphs."""
    code = speech["country_iso3"]
    if code not in COUNTRIES:
        raise SystemExit(f"no country name for code {code!r} ({speech['id']}); add it to COUNTRIES")
    session, year = int(speech["session"]), int(speech["year"])
    front = {
        "title": f"{COUNTRIES[code]} at the UN General Debate, {year} (session {session})",
        "source": f"UN General Debate, session {session}",
        "published": str(year),
    }
    lines = ["---", *(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in front.items()), "---", ""]
    return "\n".join(lines) + "\n\n".join(paragraphs(speech["text"])) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ungdc", required=True, type=Path, help="ungdc_2015_2024.jsonl")
    parser.add_argument("--out", required=True, type=Path, help="folder for the Markdown articles (created if missing)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"how many speeches (default {DEFAULT_COUNT})")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    with args.ungdc.open(encoding="utf-8") as handle:
        speeches = [json.loads(line) for line in handle if line.strip()]
    chosen = select(speeches, args.count)
    args.out.mkdir(parents=True, exist_ok=True)
    for speech in chosen:
        (args.out / f"{file_stem(speech['id'])}.md").write_text(markdown(speech), encoding="utf-8")
    sessions = sorted({int(s["session"]) for s in chosen})
    print(f"wrote {len(chosen)} speeches (sessions {sessions[0]}-{sessions[-1]}) to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
