"""vapictl routing import against the fake Vapi and a real PostgreSQL: it fills assistants and
phone_numbers from metadata.organizationId, adds nothing twice, never touches or deletes a row
it did not add, and reports conflicts."""

from conftest import query, seed
from test_vapictl import vapi, vapictl  # noqa: F401 (fixture)


def tables(pg):
    return (query(pg, "SELECT provider_assistant_id, organization_id, name, created_at"
                      " FROM assistants ORDER BY 1"),
            query(pg, "SELECT provider_phone_id, organization_id, number, created_at"
                      " FROM phone_numbers ORDER BY 1"))


def scenario(vapi, stack):
    seed(stack.pg, ["org_a", "org_b"],
         assistants=[("asst_saas", "org_a"), ("asst_conf", "org_b")])
    a = {"a1": {"name": "Front desk", "metadata": {"organizationId": "org_a"}},
         "a2": {"name": "Sales", "metadata": {"organizationId": "org_b", "tier": "gold"}},
         "a3": {"name": "No metadata"},
         "a4": {"name": "Lost", "metadata": {"organizationId": "org_gone"}},
         "asst_conf": {"name": "Moved", "metadata": {"organizationId": "org_a"}}}
    for aid, obj in a.items():
        vapi.add_assistant(dict(obj, id=aid))
    phones = {"p1": {"assistantId": "a1", "number": "+15550001001"},
              "p2": {"assistantId": "a3", "number": "+15550001002"},
              "p3": {"assistantId": "asst_saas", "number": "+15550001003"},
              "p4": {"squadId": "squad-1", "number": "+15550001004"},
              "p5": {"assistantId": "a2", "number": "+15550001005"}}
    for pid, obj in phones.items():
        vapi.add_phone_number(dict(obj, id=pid, provider="twilio"))


def env(stack):
    return {"DATABASE_URL": stack.pg.url}


def test_import_fills_the_tables_and_a_second_run_changes_nothing(vapi, stack):
    scenario(vapi, stack)
    before = tables(stack.pg)
    r = vapictl(vapi, "routing", "import", "--dry-run", env=env(stack))
    assert r.returncode == 1, r.stdout + r.stderr  # conflicts are there
    lines = r.stdout.splitlines()
    assert sorted(line for line in lines if line.startswith("would add ")) == [
        "would add assistant a1 -> org_a", "would add assistant a2 -> org_b",
        "would add phone-number p1 -> org_a", "would add phone-number p3 -> org_a",
        "would add phone-number p5 -> org_b"]
    conflicts = [line for line in lines if line.startswith("conflict ")]
    assert len(conflicts) == 2
    assert any(c.startswith("conflict assistant asst_conf: ") and "org_b" in c for c in conflicts)
    assert any(c.startswith("conflict assistant a4: organization org_gone") for c in conflicts)
    assert "  assistants     2 to add, 0 already there, 2 conflicts, 1 without an organization" \
        in lines
    assert "  phone numbers  3 to add, 0 already there, 0 conflicts, 2 without an organization" \
        in lines
    assert tables(stack.pg) == before  # a dry run changes nothing

    r = vapictl(vapi, "routing", "import", "--apply", env=env(stack))
    assert r.returncode == 1, r.stderr
    assert "  assistants     2 added, 0 already there, 2 conflicts, 1 without an organization" \
        in r.stdout
    assistants, phones = tables(stack.pg)
    assert [row[:3] for row in assistants] == [
        ("a1", "org_a", "Front desk"), ("a2", "org_b", "Sales"),
        ("asst_conf", "org_b", "asst_conf"), ("asst_saas", "org_a", "asst_saas")]
    assert [row[:3] for row in phones] == [
        ("p1", "org_a", "+15550001001"), ("p3", "org_a", "+15550001003"),
        ("p5", "org_b", "+15550001005")]
    # The rows it did not add are exactly as they were.
    assert [row for row in assistants if row[0].startswith("asst_")] == before[0]

    after = tables(stack.pg)
    r = vapictl(vapi, "routing", "import", "--apply", env=env(stack))
    assert "  assistants     0 added, 2 already there, 2 conflicts" in r.stdout
    assert "  phone numbers  0 added, 3 already there, 0 conflicts" in r.stdout
    assert tables(stack.pg) == after
    assert vapi.log("PATCH") == [] and vapi.log("POST") == []  # Vapi is only read


def test_without_conflicts_it_exits_zero_and_names_skips_with_v(vapi, stack):
    seed(stack.pg, ["org_a"])
    vapi.add_assistant({"id": "a1", "name": "A", "metadata": {"organizationId": "org_a"}})
    vapi.add_assistant({"id": "a2", "name": "B"})
    vapi.add_phone_number({"id": "p1", "provider": "vapi", "assistantId": "a1"})
    r = vapictl(vapi, "routing", "import", "--apply", "-v", env=env(stack))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "skipped assistant a2: no metadata.organizationId" in r.stdout
    assert "added assistant a1 -> org_a" in r.stdout and "added phone-number p1 -> org_a" in \
        r.stdout
    assert query(stack.pg, "SELECT provider_phone_id, organization_id, number"
                           " FROM phone_numbers") == [("p1", "org_a", None)]


def test_usage_and_database_errors(vapi, stack):
    assert vapictl(vapi, "routing", "import", env=env(stack)).returncode == 2
    r = vapictl(vapi, "routing", "import", "--dry-run", "--apply", env=env(stack))
    assert r.returncode == 2 and "--dry-run" in r.stderr
    bad = stack.pg.url.rsplit("/", 1)[0] + "/no_such_db"
    r = vapictl(vapi, "routing", "import", "--apply", env={"DATABASE_URL": bad})
    assert r.returncode == 1 and r.stdout == ""
    assert "DATABASE_URL: " in r.stderr and "no_such_db" in r.stderr
