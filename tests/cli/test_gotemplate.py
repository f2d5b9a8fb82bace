"""The --format template engine: Go text/template semantics on plain Python data."""

from __future__ import annotations

from typing import Any

import pytest

from servin.cli.gotemplate import Template, TemplateError
from servin.cli.output import LabelText

DATA: dict[str, Any] = {
    "ID": "0123456789ab",
    "Names": "web",
    "Status": "Up 2 minutes",
    "Labels": {"a": "1", "b": "2"},
    "Ports": ["80/tcp", "443/tcp"],
    "Empty": "",
    "Zero": 0,
    "Nested": {"Deep": 3, "List": [{"Name": "x"}, {"Name": "y"}]},
    "Text": LabelText({"com.example": "v", "k": "w"}),
    "Size": 1536,
    "Ratio": 0.25,
    "True": True,
    "Nil": None,
    "None": [],
}

CASES = [
    ("{{.Names}} {{.Status}}", "web Up 2 minutes"),
    ("{{.}}", None),  # checked separately: a map prints as map[...]
    ("{{json .Labels}}", '{"a":"1","b":"2"}'),
    ("{{json .Ports}}", '["80/tcp","443/tcp"]'),
    ("{{.Labels}}", "map[a:1 b:2]"),
    ('{{index .Labels "b"}}', "2"),
    ('{{index .Labels "missing"}}', ""),
    ("{{index .Ports 1}}", "443/tcp"),
    ('{{index .Nested.List 1 "Name"}}', "y"),
    ("{{(index .Nested.List 0).Name}}", "x"),
    ('{{join .Ports ", "}}', "80/tcp, 443/tcp"),
    ("{{.Names | upper}}", "WEB"),
    ('{{lower "ABC"}}', "abc"),
    ("{{title .Names}}", "Web"),
    ('{{"a b" | title}}', "A B"),
    ("{{println .Names}}", "web\n"),
    ("{{println .Names .Zero}}", "web 0\n"),
    ('{{printf "%s=%d" .Names .Size}}', "web=1536"),
    ('{{printf "%-5s|%5d|" .Names .Zero}}', "web  |    0|"),
    (
        '{{printf "%.2f %v %q %t %%" .Ratio .Ports .Names .True}}',
        '0.25 [80/tcp 443/tcp] "web" true %',
    ),
    ('{{printf "%d" .Names}}', "%!d(str=web)"),
    ('{{printf "%s %s" .Names}}', "web %!s(MISSING)"),
    ("{{range .Ports}}<{{.}}>{{end}}", "<80/tcp><443/tcp>"),
    ("{{range $i, $p := .Ports}}{{$i}}={{$p}} {{end}}", "0=80/tcp 1=443/tcp "),
    ("{{range $k, $v := .Labels}}{{$k}}:{{$v}};{{end}}", "a:1;b:2;"),
    ("{{range .Nested.List}}{{.Name}}{{$.Names}}{{end}}", "xwebyweb"),
    ("{{range .None}}x{{else}}none{{end}}", "none"),
    ("{{if .Empty}}yes{{else}}no{{end}}", "no"),
    ("{{if .Zero}}yes{{else if .Names}}named{{else}}no{{end}}", "named"),
    ("{{if and .Names .Zero}}y{{else}}n{{end}}", "n"),
    ("{{if or .Zero .Names}}y{{end}}", "y"),
    ("{{if not .Nil}}nil{{end}}", "nil"),
    ('{{if eq .Names "db" "web"}}match{{end}}', "match"),
    ("{{if gt .Size 1000}}big{{end}}", "big"),
    ("{{if ne .Zero 0}}x{{else}}zero{{end}}", "zero"),
    ("{{with .Nested}}{{.Deep}}{{end}}", "3"),
    ("{{with .Empty}}x{{else}}empty{{end}}", "empty"),
    ("{{$n := .Names}}{{$n}}-{{$n | len}}", "web-3"),
    ("{{len .Ports}} {{len .Labels}} {{len .Names}}", "2 2 3"),
    ("{{slice .ID 0 4}}", "0123"),
    ("{{.Nil}}", "<no value>"),
    ("{{.True}}", "true"),
    ("x {{- .Names -}} y", "xweby"),
    ("a {{/* a comment */}}b", "a b"),
    ("{{.Text}}", "com.example=v,k=w"),
    ('{{index .Text "k"}}', "w"),
    ('{{.Text.Label "com.example"}}', "v"),
    ("{{json .Text}}", '"com.example=v,k=w"'),
    ("{{`raw\\t`}}", "raw\\t"),
    ('{{"tab\\there"}}', "tab\there"),
    ("{{truncate .ID 4}}|{{pad .Names 1 1}}|", "0123| web |"),
    ('{{split "a:b" ":"}}', "[a b]"),
]


@pytest.mark.parametrize(("template", "expected"), [c for c in CASES if c[1] is not None])
def test_renders_like_go(template: str, expected: str) -> None:
    assert Template(template).render(DATA) == expected


def test_dot_prints_a_map() -> None:
    assert Template("{{.}}").render({"B": 2, "A": [1, "x"]}) == "map[A:[1 x] B:2]"


@pytest.mark.parametrize(
    "template",
    [
        "{{.Missing}}",
        "{{.Nested.Nope}}",
        "{{nosuch .X}}",
        "{{if .X}}",
        "{{end}}",
        "{{else}}",
        "{{if .X}}a{{else}}b{{else}}c{{end}}",
        "{{.X",
        "{{(.X}}",
        "{{.X)}}",
        "{{$undefined}}",
        "{{index .X 5}}",
        "{{len .Nil}}",
        "{{.X 1}}",
        "{{range \"abc\"}}{{end}}",
        "{{define \"x\"}}{{end}}",
        "{{}}",
        "{{ .X | }}",
        "{{/* open }}",
        '{{"unterminated}}',
        "{{lt .X \"a\"}}",
    ],
)
def test_errors_are_template_errors(template: str) -> None:
    with pytest.raises(TemplateError):
        Template(template).render({"X": 1, "Nil": None})


def test_label_method_on_rows() -> None:
    row = {"Labels": LabelText({"k": "v"})}
    assert Template('{{.Label "k"}}|{{.Label "x"}}').render(row) == "v|"


def test_private_attributes_are_not_reachable() -> None:
    with pytest.raises(TemplateError):
        Template("{{.Names.upper}}").render({"Names": "a"})


def test_inspect_fields_as_docker_spells_them_on_its_structs() -> None:
    # docker runs inspect templates on its Go structs (field ID) as well as on the JSON ("Id").
    doc = {"Id": "abc", "HostConfig": {"RestartPolicy": {"Name": "always"}}}
    assert Template("{{.ID}} {{.Id}} {{.HostConfig.RestartPolicy.Name}}").render(doc) == \
        "abc abc always"
    with pytest.raises(TemplateError):
        Template("{{.Ab}}").render({"ab": 1, "AB": 2})  # ambiguous: no guess
