"""Request bodies for the benchmark, shaped like real Vapi server messages and of exact sizes.

The text is drawn from a fixed word list with a seeded generator, so every run posts the same
bytes and compression sees something close to a real conversation (not a run of one letter).

    status-update      800 bytes    the small-body load
    end-of-call-report 7,900 bytes  the "8 KB" report of the end-to-end run
    end-of-call-report 65,536 bytes the 64 KB load

Every body routes to organization ORG (named in assistant.metadata.organizationId, and its
assistant ASSISTANT is seeded too). CALL_ID_MARK, 36 characters like a Vapi call id, stands for
the call id in the template the end-to-end load fills in per request.
"""

import json
import random

ORG = "org_bench"
ASSISTANT = "asst-bench-0001"
PHONE = "phone-bench-0001"
CALL_ID_MARK = "CALLIDCALLIDCALLIDCALLIDCALLIDCALLID"  # 36 characters, like a UUID
FIXED_CALL_ID = "5b0e6c1e-2f4a-4d8e-9a51-0c7d3f2b1a90"

SMALL = 800
REPORT = 7900
LARGE = 65536

WORDS = ("I we you the a to and of for is it that on my your can with have this be about "
         "call number order account appointment tomorrow today morning afternoon Tuesday "
         "Friday please thanks sure yes no okay right great perfect sorry again could would "
         "schedule reschedule confirm cancel price plan upgrade delivery address email phone "
         "help question invoice payment card balance refund week month time minutes quick "
         "Acme support team manager available next earlier later fine understand exactly "
         "send text message link details check moment system update record note follow up").split()


def _sentence(rng):
    n = rng.randint(5, 18)
    s = " ".join(rng.choice(WORDS) for _ in range(n))
    return s[0].upper() + s[1:] + rng.choice((".", ".", ".", "?", "!"))


def _call(call_id, status):
    return {
        "id": call_id,
        "orgId": "3f1c2a9e-7b4d-4c55-8e21-6a0f9d3b7c11",
        "createdAt": "2026-01-12T09:30:01.112Z",
        "updatedAt": "2026-01-12T09:30:01.112Z",
        "type": "outboundPhoneCall",
        "status": status,
        "phoneCallProvider": "twilio",
        "phoneCallProviderId": "CA5f3e0d2c1b4a59687766554433221100",
        "phoneCallTransport": "pstn",
        "phoneNumberId": PHONE,
        "assistantId": ASSISTANT,
        "customer": {"number": "+15550142231"},
        "assistantOverrides": {"metadata": {"organizationId": ORG, "leadId": "lead-88412"}},
    }


def _assistant():
    return {"id": ASSISTANT, "name": "Outbound reminders",
            "metadata": {"organizationId": ORG}}


def _pad(obj, field_path, size):
    """Grows the string at field_path of obj until the compact JSON is exactly size bytes."""
    target = obj
    for k in field_path[:-1]:
        target = target[k]
    key = field_path[-1]
    body = json.dumps(obj, separators=(",", ":"))
    if len(body) > size:
        raise ValueError("fixture already %d bytes, over %d" % (len(body), size))
    rng = random.Random(size)
    while True:
        body = json.dumps(obj, separators=(",", ":"))
        missing = size - len(body)
        if missing <= 0:
            break
        target[key] += (" " + _sentence(rng))[:missing]
    return body.encode()


def status_update(size=SMALL, call_id=FIXED_CALL_ID):
    """A status-update (in-progress) of exactly size bytes."""
    call = _call(call_id, "in-progress")
    for k in ("phoneCallProviderId", "phoneCallTransport", "updatedAt"):
        del call[k]
    call["assistantOverrides"]["metadata"]["campaign"] = ""
    msg = {
        "timestamp": 1768210201250,
        "type": "status-update",
        "status": "in-progress",
        "call": call,
        "assistant": _assistant(),
        "customer": {"number": "+15550142231"},
    }
    return _pad({"message": msg},
                ["message", "call", "assistantOverrides", "metadata", "campaign"], size)


def end_of_call_report(size, call_id=FIXED_CALL_ID):
    """An end-of-call-report of exactly size bytes: transcript, messages, analysis, costs."""
    rng = random.Random(7)
    msg = {
        "timestamp": 1768210530250,
        "type": "end-of-call-report",
        "startedAt": "2026-01-12T09:30:05.000Z",
        "endedAt": "2026-01-12T09:35:30.250Z",
        "endedReason": "customer-ended-call",
        "cost": 0.1842,
        "costBreakdown": {"transport": 0.0125, "stt": 0.0271, "llm": 0.0653, "tts": 0.0443,
                          "vapi": 0.035, "total": 0.1842, "llmPromptTokens": 4215,
                          "llmCompletionTokens": 388, "ttsCharacters": 1462},
        "artifact": {"transcript": "", "messages": [],
                     "recordingUrl": "https://storage.vapi.ai/%s-1768210530250-mono.wav"
                                     % call_id,
                     "stereoRecordingUrl": "https://storage.vapi.ai/%s-1768210530250-stereo.wav"
                                           % call_id},
        "analysis": {"summary": "", "successEvaluation": "true"},
        "call": _call(call_id, "queued"),
        "assistant": _assistant(),
        "phoneNumber": {"id": PHONE, "number": "+15550100001"},
        "customer": {"number": "+15550142231"},
    }
    art = msg["artifact"]
    t, lines = 1768210205000, []
    # Turns until the body is nearly full; the summary takes the rest.
    while True:
        role = "bot" if len(lines) % 2 == 0 else "user"
        text = " ".join(_sentence(rng) for _ in range(rng.randint(1, 3)))
        dur = rng.randint(900, 6000)
        turn = {"role": role, "message": text, "time": t, "endTime": t + dur,
                "secondsFromStart": round((t - 1768210205000) / 1000, 3), "duration": dur}
        trial_lines = lines + [("AI: " if role == "bot" else "User: ") + text]
        art["messages"].append(turn)
        art["transcript"] = "\n".join(trial_lines)
        if len(json.dumps({"message": msg}, separators=(",", ":"))) > size - 200:
            art["messages"].pop()
            art["transcript"] = "\n".join(lines)
            break
        lines = trial_lines
        t += dur + rng.randint(200, 1500)
    msg["analysis"]["summary"] = "The customer"
    return _pad({"message": msg}, ["message", "analysis", "summary"], size)


def write_all(folder):
    """Writes the bodies (and the end-to-end template) into folder; returns {name: path}."""
    import os
    files = {
        "small": ("status-update-%d.json" % SMALL, status_update()),
        "report": ("end-of-call-report-%d.json" % REPORT, end_of_call_report(REPORT)),
        "large": ("end-of-call-report-%d.json" % LARGE, end_of_call_report(LARGE)),
        "template": ("end-of-call-report-%d.template" % REPORT,
                     end_of_call_report(REPORT, CALL_ID_MARK)),
    }
    out = {}
    for name, (fname, data) in files.items():
        path = os.path.join(folder, fname)
        with open(path, "wb") as f:
            f.write(data)
        out[name] = path
    return out


if __name__ == "__main__":
    import sys
    for k, v in write_all(sys.argv[1] if len(sys.argv) > 1 else ".").items():
        print(k, v)
