"""Drives a live prepaged through the Python client generated from openapi.yaml
(openapi-python-client): create, fault (JSON by page and by address, form, query),
batch, get, list, reset, delete, and the errors a client must be able to read.

Usage: python drive.py BASE_URL TOKEN   (the generated package `prepage_client` on sys.path)
Prints one line per check and "N passed, N failed"; exit 1 when a check fails.
"""
import sys

from prepage_client import AuthenticatedClient, Client
from prepage_client.api.faults import post_fault, post_faults
from prepage_client.api.operations import livez, readyz, version
from prepage_client.api.sessions import (
    create_session, delete_session, get_session, list_sessions, reset_session)
from prepage_client.models import (
    AddrBatch, AddrFault, Decision, DecisionList, PageBatch, PageFault, PageFaultForm, Policy, Problem,
    Session, SessionConfigInput, SessionList)
from prepage_client.models.decision_outcome import DecisionOutcome

base, token = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(what, ok, got=None):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {what}")
    else:
        failed += 1
        print(f"not ok - {what}: got {got!r}")


client = AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)
anonymous = Client(base_url=base)
sid = "py-vm-1"

# Create: 201 with the document, then the identical PUT is a 200, another config a 409.
config = SessionConfigInput(policy=Policy.DP, max_pages=64, k=5)
r = create_session.sync_detailed(sid, client=client, body=config)
check("create answers 201 and a Session", r.status_code == 201 and isinstance(r.parsed, Session), (r.status_code, r.parsed))
doc = r.parsed
check("the document names its policy and max_pages", doc.config.policy == Policy.DP and doc.config.max_pages == 64, doc.config)
check("the Location header names the session", r.headers.get("location") == f"/sessions/{sid}", r.headers.get("location"))
r = create_session.sync_detailed(sid, client=client, body=config)
check("the identical PUT again is a 200", r.status_code == 200 and isinstance(r.parsed, Session), r.status_code)
r = create_session.sync_detailed(sid, client=client, body=SessionConfigInput(policy=Policy.DP, max_pages=32))
check("another configuration is a 409 problem", r.status_code == 409 and isinstance(r.parsed, Problem)
      and r.parsed.type_ == "urn:prepage:problem:session-conflict", (r.status_code, r.parsed))
r = create_session.sync_detailed("py-bad", client=client, body=SessionConfigInput(max_pages=0))
check("an out-of-range field is a 400 problem naming it", r.status_code == 400 and isinstance(r.parsed, Problem)
      and "max_pages" in r.parsed.detail, (r.status_code, r.parsed))
r = create_session.sync_detailed("py-default", client=client)
check("a PUT without a body takes every default (dp-plus)", r.status_code == 201 and r.parsed.config.policy == Policy.DP_PLUS,
      (r.status_code, r.parsed))

# Faults: a page (JSON), the next page by address as a hexadecimal string, a form body, the query.
d = post_fault.sync(sid, client=client, body=PageFault(page=1000, stream=3))
check("a JSON fault by page is a first decision", isinstance(d, Decision) and d.outcome == DecisionOutcome.FIRST
      and d.start == 1000 and d.count == 1 and d.addr == 1000 * 4096, d)
d = post_fault.sync(sid, client=client, body=AddrFault(addr=hex(1001 * 4096), stream=3))
check("a JSON fault by address continues the case (smaller)", isinstance(d, Decision)
      and d.outcome == DecisionOutcome.SMALLER and d.start == 1001, d)
window_end = d.start + d.count
d = post_fault.sync(sid, client=client, body=PageFaultForm(page=window_end - 1, stream=3))
check("a form-encoded fault inside the window is a repeat", isinstance(d, Decision)
      and d.outcome == DecisionOutcome.REPEAT, d)
d = post_fault.sync(sid, client=client, page=5000, stream=7)
check("a fault in the query starts stream 7 (first)", isinstance(d, Decision) and d.outcome == DecisionOutcome.FIRST, d)
r = post_fault.sync_detailed("py-nobody", client=client, body=PageFault(page=1))
check("a fault for an unknown session is a 404 problem", r.status_code == 404 and isinstance(r.parsed, Problem), r.status_code)

# Batch: decisions in order, one per fault.
b = post_faults.sync(sid, client=client, body=PageBatch(pages=[20000, 20001, 30000], streams=[4, 4, 4]))
check("a batch by pages answers one decision per fault, in order", isinstance(b, DecisionList)
      and [x.start for x in b.decisions][0] == 20000 and len(b.decisions) == 3
      and b.decisions[0].outcome == DecisionOutcome.FIRST, b)
b = post_faults.sync(sid, client=client, body=AddrBatch(addrs=[40000 * 4096, "0x" + format(40000 * 4096, "x")]))
check("a batch by addresses: the same page twice is a repeat", isinstance(b, DecisionList)
      and [x.outcome for x in b.decisions] == [DecisionOutcome.FIRST, DecisionOutcome.REPEAT], b)

# Read, list, reset, delete.
s = get_session.sync(sid, client=client)
check("the document counts every decided fault", isinstance(s, Session) and s.stats.faults == 9, s and s.stats)
check("the document lists the streams seen (0, 3, 4, 7)", isinstance(s, Session)
      and [x.stream for x in s.state.streams] == [0, 3, 4, 7], s and s.state.streams)
page = list_sessions.sync(client=client, limit=1)
check("a list of limit 1 holds one session and a next", isinstance(page, SessionList) and len(page.sessions) == 1
      and page.next_ is not None, page)
s = reset_session.sync(sid, client=client)
check("a reset forgets the streams and keeps the counters", isinstance(s, Session) and s.state.streams == []
      and s.stats.faults == 9, s)
r = delete_session.sync_detailed(sid, client=client)
check("delete answers the final document", r.status_code == 200 and isinstance(r.parsed, Session), r.status_code)
r = get_session.sync_detailed(sid, client=client)
check("the deleted session is a 404", r.status_code == 404 and isinstance(r.parsed, Problem), r.status_code)
delete_session.sync_detailed("py-default", client=client)

# Operations and authentication.
v = version.sync(client=client)
check("version answers the API's major version 1", v is not None and v.api == "1", v)
check("readyz answers ready without a token", readyz.sync(client=anonymous) is not None)
check("livez answers ok without a token", livez.sync(client=anonymous) is not None)
r = get_session.sync_detailed("any", client=anonymous)
check("a route that needs the token is a 401 problem without it", r.status_code == 401 and isinstance(r.parsed, Problem),
      r.status_code)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
