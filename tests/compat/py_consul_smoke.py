"""py-consul (PyPI) drives a Praetor agent: agent, catalog, health, KV (cas, flags,
recurse, keys, blocking queries), sessions and locks. Usage: python py_consul_smoke.py HOST:PORT"""
import sys
import threading
import time

import consul

host, port = sys.argv[1].split(":")
c = consul.Consul(host=host, port=int(port))


def step(s):
    print("step:", s, flush=True)


step("agent.self")
me = c.agent.self()
node = me["Config"]["NodeName"]
assert me["Config"]["Datacenter"] == "dc1", me["Config"]

step("agent.service.register with a TTL check")
assert c.agent.service.register("web", service_id="web1", address="127.0.0.1", port=80, tags=["rails"],
                                check=consul.Check.ttl("30s")) is True
assert c.agent.services()["web1"]["Port"] == 80
_, hs = c.health.service("web", passing=True)
assert hs == [], hs
c.agent.check.ttl_pass("service:web1", notes="ok")
_, hs = c.health.service("web", passing=True)
assert [h["Service"]["ID"] for h in hs] == ["web1"], hs

step("catalog")
idx, svcs = c.catalog.services()
assert int(idx) > 0 and "rails" in svcs["web"], svcs
_, nodes = c.catalog.service("web", tag="rails")
assert nodes[0]["ServicePort"] == 80 and nodes[0]["Node"] == node, nodes
_, ns = c.catalog.nodes()
assert any(n["Node"] == node for n in ns)

step("kv")
assert c.kv.put("compat/a", "1", flags=7) is True
idx, e = c.kv.get("compat/a")
assert e["Value"] == b"1" and e["Flags"] == 7, e
assert c.kv.put("compat/a", "2", cas=0) is False
assert c.kv.put("compat/a", "2", cas=e["ModifyIndex"]) is True
assert c.kv.put("compat/b/c", "3") is True
_, keys = c.kv.get("compat/", keys=True, separator="/")
assert keys == ["compat/a", "compat/b/"], keys
_, allv = c.kv.get("compat/", recurse=True)
assert [x["Key"] for x in allv] == ["compat/a", "compat/b/c"], allv
i404, none = c.kv.get("compat/missing")
assert none is None and int(i404) > 0

step("blocking query")
idx, _ = c.kv.get("compat/a")
threading.Timer(0.8, lambda: consul.Consul(host=host, port=int(port)).kv.put("compat/a", "woken")).start()
t0 = time.time()
nidx, e = c.kv.get("compat/a", index=idx, wait="5s")
dt = time.time() - t0
assert e["Value"] == b"woken" and int(nidx) > int(idx) and 0.5 < dt < 4, (dt, idx, nidx)

step("sessions and locks")
s1 = c.session.create(name="compat", ttl=15, behavior="delete", lock_delay=0)
s2 = c.session.create(name="compat2", lock_delay=0)
assert c.kv.put("compat/lock", "x", acquire=s1) is True
assert c.kv.put("compat/lock", "y", acquire=s2) is False
assert c.session.renew(s1)["ID"] == s1
assert c.session.info(s1)[1]["Behavior"] == "delete"
assert c.kv.put("compat/lock", "x", release=s1) is True
assert c.kv.put("compat/lock", "y", acquire=s2) is True
assert c.session.destroy(s2) is True
assert c.kv.get("compat/lock")[1]["Value"] == b"y"
assert c.kv.put("compat/lock2", "z", acquire=s1) is True
assert c.session.destroy(s1) is True
assert c.kv.get("compat/lock2")[1] is None

step("delete recurse and deregister")
assert c.kv.delete("compat/", recurse=True) is True
assert c.kv.get("compat/", recurse=True)[1] is None
assert c.agent.service.deregister("web1") is True
assert c.catalog.service("web")[1] == []
print("ALL-OK")
