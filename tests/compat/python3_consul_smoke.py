"""Debian's python3-consul (python-consul 0.7.1, used by Patroni) against a Praetor agent.
Usage: /usr/bin/python3 python3_consul_smoke.py HOST:PORT"""
import sys
import time
import threading

import consul

host, port = sys.argv[1].split(":")
c = consul.Consul(host=host, port=int(port))
assert c.agent.self()["Config"]["Datacenter"]
assert c.agent.service.register("web", service_id="web", address="127.0.0.1", port=80, tags=["rails"]) is True
idx, s = c.catalog.services()
assert "rails" in s["web"], s
_, h = c.health.service("web", passing=True)
assert [x["Service"]["Port"] for x in h] == [80], h
i, v = c.kv.get("p3/none")
assert v is None and str(i).isdigit()
assert c.kv.put("p3/a", "1") is True
i, v = c.kv.get("p3/a")
assert c.kv.put("p3/a", "2", cas=v["ModifyIndex"]) is True
assert c.kv.put("p3/a", "3", cas=v["ModifyIndex"]) is False
_, ks = c.kv.get("p3/", keys=True)
assert ks == ["p3/a"], ks
i, v = c.kv.get("p3/a")
threading.Timer(0.8, lambda: consul.Consul(host=host, port=int(port)).kv.put("p3/a", "4")).start()
t0 = time.time()
ni, nv = c.kv.get("p3/a", index=i, wait="3s")
assert nv["Value"] == b"4" and int(ni) > int(i) and time.time() - t0 < 2.9
sid = c.session.create(name="p3", ttl=10, behavior="delete", lock_delay=0.001)
assert c.kv.put("p3/leader", "me", acquire=sid) is True
assert c.session.renew(sid)["ID"] == sid
assert c.session.destroy(sid) is True
assert c.kv.get("p3/leader")[1] is None
import urllib.request
urllib.request.urlopen(urllib.request.Request("http://%s/v1/agent/service/deregister/web" % sys.argv[1], method="PUT"), timeout=5)
assert c.catalog.service("web")[1] == []
print("ALL-OK")
