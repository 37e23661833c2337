#!/usr/bin/python3
"""Checks deploy/k8s/*.yaml offline, strictly, without a Kubernetes cluster.

Schema: the object models of Debian's python3-kubernetes (22.6.0, generated from
the Kubernetes 1.22 OpenAPI spec): each model's attribute_map is the set of
fields an object may have, openapi_types their types, and a setter that refuses
None marks a required field. Every field of every object is checked: an
unknown one (a typo), a wrong type, a missing required field is an error. The
generated models carry no enums, so the values of the enum fields these
manifests use are checked from a table here (ENUMS), and names, label values
and quantities against Kubernetes' own patterns.

Then what a schema cannot see, for these manifests: the Services and the
PodDisruptionBudget select the StatefulSet's pods, the peer Service is headless
and publishes unready pods, named ports and volumes exist, every $(VAR) in a
command or env value names a variable the container defines (Kubernetes leaves
an unknown one as it is, silently), and --cluster lists exactly the
StatefulSet's pods by their stable DNS names.

    check_manifests.py [DIR]          check DIR (default: this script's folder)
    check_manifests.py --self-test    also prove each kind of mistake is caught

Exit status 0 when everything holds, 1 with one line per error otherwise, 2 for
a usage error or a missing python3-kubernetes.
"""
import copy
import glob
import inspect
import os
import re
import sys

try:
    import yaml
    import kubernetes.client as k8s
except ImportError as e:
    sys.stderr.write("check_manifests: %s; install python3-yaml and python3-kubernetes "
                     "(deploy/install-deps.sh does)\n" % e)
    sys.exit(2)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

# (model, attribute): allowed values, from the Kubernetes API reference.
ENUMS = {
    ("V1ServiceSpec", "type"): {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"},
    ("V1ServicePort", "protocol"): {"TCP", "UDP", "SCTP"},
    ("V1ContainerPort", "protocol"): {"TCP", "UDP", "SCTP"},
    ("V1StatefulSetSpec", "pod_management_policy"): {"OrderedReady", "Parallel"},
    ("V1StatefulSetUpdateStrategy", "type"): {"RollingUpdate", "OnDelete"},
    ("V1PersistentVolumeClaimSpec", "access_modes"):
        {"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"},
    ("V1Container", "image_pull_policy"): {"Always", "IfNotPresent", "Never"},
    ("V1SeccompProfile", "type"): {"RuntimeDefault", "Localhost", "Unconfined"},
    ("V1ObjectFieldSelector", "field_path"):
        {"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
         "spec.serviceAccountName", "status.hostIP", "status.podIP", "status.podIPs"},
    ("V1EmptyDirVolumeSource", "medium"): {"", "Memory"},
    ("V1HTTPGetAction", "scheme"): {"HTTP", "HTTPS"},
}
# Fields of type "object" in the models that are IntOrString in the API.
INT_OR_STRING = {("V1ServicePort", "target_port"), ("V1HTTPGetAction", "port"),
                 ("V1TCPSocketAction", "port"), ("V1PodDisruptionBudgetSpec", "max_unavailable"),
                 ("V1PodDisruptionBudgetSpec", "min_available")}


def required_fields(model):
    """The attributes whose generated setter refuses None."""
    required = set()
    for attr in model.openapi_types:
        setter = getattr(model, attr).fset
        if "must not be `None`" in inspect.getsource(setter):
            required.add(attr)
    return required


def model_of(api_version, kind):
    """The model class of apiVersion/kind, or an error if the API has no such kind."""
    group, _, version = api_version.rpartition("/")
    parts = [p for p in group.replace(".k8s.io", "").split(".") if p] or ["core"]
    api = getattr(k8s, "".join(p.capitalize() for p in parts) + version.capitalize() + "Api", None)
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()
    if api is None or not any(hasattr(api, "create_" + scope + snake)
                              for scope in ("namespaced_", "")):
        return None, "no kind %s in apiVersion %s" % (kind, api_version)
    return getattr(k8s, version.capitalize() + kind), None


class Checker(object):
    def __init__(self):
        self.errors = []
        self.fields = 0  # fields checked against a model

    def error(self, where, message):
        self.errors.append("%s: %s" % (where, message))

    def value(self, v, type_name, where, owner=None, attr=None):
        """Checks `v` against the model type `type_name` ('str', 'list[V1Container]', ...)."""
        if type_name.startswith("list["):
            if not isinstance(v, list):
                return self.error(where, "a list expected, not %r" % (v,))
            for i, item in enumerate(v):
                self.value(item, type_name[5:-1], "%s[%d]" % (where, i), owner, attr)
            return
        if type_name.startswith("dict("):
            inner = type_name[5:-1].split(", ", 1)[1]
            if not isinstance(v, dict):
                return self.error(where, "a mapping expected, not %r" % (v,))
            for key, item in v.items():
                if not isinstance(key, str):
                    self.error(where, "key %r is not a string" % (key,))
                self.value(item, inner, "%s.%s" % (where, key), owner, attr)
            return
        scalar = {"str": str, "int": int, "bool": bool, "float": (int, float),
                  "datetime": str, "date": str}
        if type_name in scalar:
            ok = isinstance(v, scalar[type_name]) and not (
                type_name in ("int", "float") and isinstance(v, bool))
            if not ok:
                return self.error(where, "%s expected, not %r" % (type_name, v))
        elif type_name == "object":
            if (owner, attr) in INT_OR_STRING and (isinstance(v, bool) or
                                                   not isinstance(v, (int, str))):
                return self.error(where, "an int or a string expected, not %r" % (v,))
        else:
            return self.model(v, getattr(k8s, type_name), where)
        allowed = ENUMS.get((owner, attr))
        if allowed is not None and v not in allowed:
            self.error(where, "%r is not one of %s" % (v, ", ".join(sorted(allowed))))

    def model(self, v, model, where):
        if not isinstance(v, dict):
            return self.error(where, "a mapping (%s) expected, not %r" % (model.__name__, v))
        by_json = {j: a for a, j in model.attribute_map.items()}
        for key in v:
            if key not in by_json:
                self.error(where, "unknown field %r in %s (known: %s)"
                           % (key, model.__name__, ", ".join(sorted(by_json))))
        for attr in sorted(required_fields(model)):
            if v.get(model.attribute_map[attr]) is None:
                self.error(where, "%s needs %r" % (model.__name__, model.attribute_map[attr]))
        for key, item in v.items():
            attr = by_json.get(key)
            self.fields += 1
            if attr is not None:
                self.value(item, model.openapi_types[attr], "%s.%s" % (where, key),
                           model.__name__, attr)
        if model is k8s.V1ObjectMeta:
            self.metadata(v, where)
        if model is k8s.V1ResourceRequirements:
            for section in ("requests", "limits"):
                for name, q in (v.get(section) or {}).items():
                    if not QUANTITY.match(str(q)):
                        self.error("%s.%s.%s" % (where, section, name), "%r is no quantity" % (q,))

    def metadata(self, meta, where):
        name = meta.get("name")
        if isinstance(name, str) and not DNS_LABEL.match(name):
            self.error(where + ".name", "%r is not a DNS-1123 label" % name)
        for key, value in (meta.get("labels") or {}).items():
            if not isinstance(value, str) or not LABEL_VALUE.match(value):
                self.error("%s.labels.%s" % (where, key), "%r is no label value" % (value,))

    def document(self, doc, where):
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            return self.error(where, "an object with apiVersion and kind expected")
        model, problem = model_of(str(doc["apiVersion"]), str(doc["kind"]))
        if problem:
            return self.error(where, problem)
        if not (doc.get("metadata") or {}).get("name"):
            self.error(where, "metadata.name is missing")
        self.model(doc, model, "%s %s/%s" % (where, doc["kind"], (doc.get("metadata") or {})
                                             .get("name")))


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_vars(container):
    return {e.get("name") for e in container.get("env") or []}


def check_statefulset(c, sts, services, pdbs):
    where = "StatefulSet/" + sts["metadata"]["name"]
    spec = sts["spec"]
    pod = spec["template"]
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if not selects(spec["selector"].get("matchLabels"), labels):
        c.error(where, "spec.selector does not select the pod template's labels")
    if spec.get("podManagementPolicy") != "Parallel":
        c.error(where, "podManagementPolicy must be Parallel: a new cluster starts all at once")
    claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []}
    volumes = {v["name"] for v in pod["spec"].get("volumes") or []}
    peer = services.get(spec.get("serviceName"))
    if peer is None:
        c.error(where, "serviceName %r names no Service here" % spec.get("serviceName"))
    else:
        if peer["spec"].get("clusterIP") != "None":
            c.error("Service/" + spec["serviceName"], "the peer Service must be headless")
        if peer["spec"].get("publishNotReadyAddresses") is not True:
            c.error("Service/" + spec["serviceName"], "publishNotReadyAddresses must be true")
    for name, svc in services.items():
        if not selects(svc["spec"].get("selector"), labels):
            c.error("Service/" + name, "its selector does not select the StatefulSet's pods")
    for name, pdb in pdbs.items():
        if not selects(pdb["spec"]["selector"].get("matchLabels"), labels):
            c.error("PodDisruptionBudget/" + name, "its selector does not select the pods")
    containers = pod["spec"]["containers"] + (pod["spec"].get("initContainers") or [])
    ports = {p.get("name"): p["containerPort"] for ct in containers for p in ct.get("ports") or []}
    for name, svc in services.items():
        for p in svc["spec"].get("ports") or []:
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in ports:
                c.error("Service/" + name, "targetPort %r is no container port" % p["targetPort"])
    for ct in containers:
        cw = "%s container %s" % (where, ct["name"])
        for m in ct.get("volumeMounts") or []:
            if m["name"] not in volumes | claims:
                c.error(cw, "volumeMount %r names no volume or claim" % m["name"])
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = ((ct.get(probe) or {}).get("httpGet") or {}).get("port")
            if isinstance(port, str) and port not in ports:
                c.error(cw, "%s port %r is no container port" % (probe, port))
        defined = container_vars(ct)
        texts = (ct.get("command") or []) + (ct.get("args") or []) + \
            [e["value"] for e in ct.get("env") or [] if "value" in e]
        for text in texts:
            for var in VAR_REF.findall(text):
                if var not in defined:
                    c.error(cw, "$(%s) names no variable of the container" % var)
    check_cluster_flag(c, sts, ports)


def check_cluster_flag(c, sts, ports):
    """--cluster names pods 0..replicas-1 by their DNS names, on the peer port."""
    spec = sts["spec"]
    name = sts["metadata"]["name"]
    main = spec["template"]["spec"]["containers"][0]
    flags = dict(a[2:].split("=", 1) for a in main.get("args") or [] if a.startswith("--"))
    expected = ",".join("%s-%d=%s-%d.%s.$(POD_NAMESPACE).svc.cluster.local:%d"
                        % (name, i, name, i, spec.get("serviceName"), ports.get("peer", 0))
                        for i in range(spec.get("replicas", 1)))
    if flags.get("cluster") != expected:
        c.error("StatefulSet/%s container %s" % (name, main["name"]),
                "--cluster is %r; for its pods it must be %r" % (flags.get("cluster"), expected))
    if flags.get("name") != "$(POD_NAME)":
        c.error("StatefulSet/%s" % name, "--name must be $(POD_NAME): pod kvpaxos-N is node "
                "kvpaxos-N")


def check(docs, counted=None):
    """Every error of `docs` (a list of (where, object)), as lines; `counted`, a
    list, gets the number of fields checked against a model."""
    c = Checker()
    for where, doc in docs:
        c.document(doc, where)
    if counted is not None:
        counted.append(c.fields)
    if c.errors:
        return c.errors  # the cross-checks below read fields the schema vouched for
    by_kind = {}
    for _, doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    sets = by_kind.get("StatefulSet", {})
    if len(sets) != 1:
        c.error("manifests", "one StatefulSet expected, found %d" % len(sets))
    for sts in sets.values():
        check_statefulset(c, sts, by_kind.get("Service", {}), by_kind.get("PodDisruptionBudget", {}))
    return c.errors


def load(directory):
    docs = []
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        with open(path) as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if doc is not None:
                    docs.append(("%s#%d" % (os.path.basename(path), i + 1), doc))
    return docs


def find(docs, kind):
    return next(doc for _, doc in docs if doc["kind"] == kind)


# Each mutation makes one mistake; the check must report it (and the text it names).
def mutations():
    def container(docs):
        return find(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]

    def typo(docs):
        ct = container(docs)
        ct["readinesProbe"] = ct.pop("readinessProbe")

    def no_name(docs):
        del container(docs)["name"]

    def replicas_text(docs):
        find(docs, "StatefulSet")["spec"]["replicas"] = "3"

    def policy_case(docs):
        find(docs, "StatefulSet")["spec"]["podManagementPolicy"] = "parallel"

    def probe_port(docs):
        container(docs)["livenessProbe"]["httpGet"]["port"] = "metric"

    def undefined_var(docs):
        container(docs)["args"].append("--log-level=$(LOG_LEVEL)")

    def selector(docs):
        find(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] = {"app": "other"}

    def cluster_size(docs):
        find(docs, "StatefulSet")["spec"]["replicas"] = 5

    def not_headless(docs):
        for _, doc in docs:
            if doc["kind"] == "Service" and doc["spec"].get("clusterIP") == "None":
                doc["spec"]["clusterIP"] = "10.0.0.10"

    def wrong_group(docs):
        find(docs, "PodDisruptionBudget")["apiVersion"] = "apps/v1"

    def quantity(docs):
        container(docs)["resources"]["limits"]["memory"] = "2 GB"

    return [(typo, "unknown field 'readinesProbe'"), (no_name, "V1Container needs 'name'"),
            (replicas_text, "int expected"), (policy_case, "is not one of OrderedReady"),
            (probe_port, "port 'metric' is no container port"),
            (undefined_var, "$(LOG_LEVEL) names no variable"),
            (selector, "does not select the pods"), (cluster_size, "--cluster is"),
            (not_headless, "must be headless"), (wrong_group, "no kind PodDisruptionBudget"),
            (quantity, "is no quantity")]


def self_test(docs):
    """Lines for each mutation the check does not catch."""
    missed = []
    for mutate, expect in mutations():
        broken = copy.deepcopy(docs)
        mutate(broken)
        errors = check(broken)
        if not any(expect in e for e in errors):
            missed.append("self-test %s: expected an error with %r, got %r"
                          % (mutate.__name__, expect, errors))
    return missed


def main(argv):
    args = [a for a in argv[1:] if a != "--self-test"]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        sys.stderr.write("usage: check_manifests.py [--self-test] [DIR]\n")
        return 2
    directory = args[0] if args else os.path.dirname(os.path.abspath(__file__))
    docs = load(directory)
    if not docs:
        sys.stderr.write("check_manifests: no *.yaml objects in %s\n" % directory)
        return 2
    counted = []
    errors = check(docs, counted)
    if "--self-test" in argv:
        errors += self_test(docs)
    for e in errors:
        print("FAIL: " + e)
    kinds = ", ".join(sorted("%s/%s" % (d["kind"], d["metadata"]["name"]) for _, d in docs))
    tests = len(mutations()) if "--self-test" in argv else 0
    print("check_manifests: %d objects (%s), %d fields, against the Kubernetes 1.22 models "
          "of python3-kubernetes %s; %d of %d planted mistakes caught" % (
              len(docs), kinds, counted[0], getattr(k8s, "__version__", "?"),
              tests - sum(1 for e in errors if e.startswith("self-test")), tests))
    print("%d passed, %d failed" % (0 if errors else 1, 1 if errors else 0))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
