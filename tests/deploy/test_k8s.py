"""The Kubernetes manifests: every overlay renders with kustomize (``kubectl kustomize``) and every
rendered object validates against the Kubernetes schemas (``kubernetes-validate``, strict: no
unknown fields); then the properties the deployment promises are checked object by object."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from tests.deploy.conftest import ROOT

from harmrank.gateway.settings import GatewaySettings

# PyYAML ships no type stubs; imported by name as the generator does.
yaml: Any = importlib.import_module("yaml")

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.32.0"
HARMRANK_SERVICES = {"gateway": 8000, "generator": 8001, "judge": 8002, "metrics": 8003}
TGI = ("tgi-mistral", "tgi-mpt", "tgi-stablelm")
# Custom resources have no schema in kubernetes-validate; they are checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor"}
Obj = dict[str, Any]
PROD_SECRETS = ("harmrank-secrets", "judge-keys", "hf-token")


@cache
def render(path: str) -> tuple[Obj, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl (with its built-in kustomize) is needed to render deploy/k8s")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def of_kind(objects: tuple[Obj, ...], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("path", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_every_rendered_object_validates_against_the_kubernetes_schemas(path: str) -> None:
    objects = render(path)
    assert objects
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {exc.path}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_a_deployment_service_and_service_account(overlay: str) -> None:
    objects = render(f"overlays/{overlay}")
    deployments, services = of_kind(objects, "Deployment"), of_kind(objects, "Service")
    accounts = of_kind(objects, "ServiceAccount")
    assert set(deployments) >= {*HARMRANK_SERVICES, "worker", *TGI}
    for name, port in HARMRANK_SERVICES.items():
        assert services[name]["spec"]["ports"][0]["port"] == port
    for name, deployment in deployments.items():
        assert pod_spec(deployment)["serviceAccountName"] == name in accounts
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert of_kind(objects, "Namespace")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_harmrank_services_are_probed_on_readyz_and_healthz(overlay: str) -> None:
    deployments = of_kind(render(f"overlays/{overlay}"), "Deployment")
    for name in HARMRANK_SERVICES:
        (container,) = pod_spec(deployments[name])["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for name in TGI:
        (container,) = pod_spec(deployments[name])["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health"


def workloads(objects: tuple[Obj, ...]) -> list[Obj]:
    kinds = {"Deployment", "StatefulSet", "Job"}
    return [o for o in objects if o["kind"] in kinds]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_hardened_and_has_requests_and_limits(overlay: str) -> None:
    for workload in workloads(render(f"overlays/{overlay}")):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys() & resources["limits"].keys()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_come_from_a_config_map_and_keys_from_secrets(overlay: str) -> None:
    objects = render(f"overlays/{overlay}")
    config_maps, secrets = of_kind(objects, "ConfigMap"), of_kind(objects, "Secret")
    gateway = pod_spec(of_kind(objects, "Deployment")["gateway"])["containers"][0]
    refs = {k: v["name"] for source in gateway["envFrom"] for k, v in source.items()}
    assert refs["configMapRef"] in config_maps  # the generator's hash suffix was followed
    assert "HARMRANK_DATABASE_URL" not in config_maps[refs["configMapRef"]]["data"]
    # dev renders its example Secrets (hashed names, references followed); prod renders none.
    if overlay == "dev":
        assert len(secret_references(objects)) == len(PROD_SECRETS)
        assert secret_references(objects) <= set(secrets)
    else:
        assert secret_references(objects) == set(PROD_SECRETS)
    for container in (c for w in workloads(objects) for c in pod_spec(w)["containers"]):
        for variable in container.get("env", []):
            assert "KEY" not in variable["name"] or "valueFrom" in variable


def secret_references(objects: tuple[Obj, ...]) -> set[str]:
    """Every Secret name a pod refers to: envFrom, env valueFrom and volumes."""
    found = set()
    for spec in (pod_spec(w) for w in workloads(objects)):
        found |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            found |= {
                e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e
            }
            for variable in container.get("env", []):
                if "secretKeyRef" in variable.get("valueFrom", {}):
                    found.add(variable["valueFrom"]["secretKeyRef"]["name"])
    return found


def test_prod_references_exactly_the_secrets_operators_are_told_to_create() -> None:
    """The overlay's instructions name the Secrets; the pods must use those names unhashed."""
    objects = render("overlays/prod")
    assert not of_kind(objects, "Secret")
    assert secret_references(objects) == set(PROD_SECRETS)
    instructions = (K8S / "overlays" / "prod" / "kustomization.yaml").read_text()
    readme = (ROOT / "deploy" / "README.md").read_text()
    for name in PROD_SECRETS:
        assert f"#   {name} " in instructions, name
        assert f"kubectl -n harmrank create secret generic {name}" in readme, name


def test_tgi_cannot_start_without_its_token() -> None:
    """A missing hf-token must stop the pod where kubectl shows it, not fail gated downloads."""
    for name in TGI:
        (container,) = pod_spec(of_kind(render("overlays/prod"), "Deployment")[name])["containers"]
        (token,) = [v for v in container["env"] if v["name"] == "HF_TOKEN"]
        assert token["valueFrom"]["secretKeyRef"].get("optional", False) is False


def test_the_example_secrets_are_marked_as_examples() -> None:
    kustomization = (K8S / "components" / "example-secrets" / "kustomization.yaml").read_text()
    assert "EXAMPLE VALUES, NOT SECRETS" in kustomization
    generators = yaml.safe_load(kustomization)["secretGenerator"]
    values = [literal.partition("=")[2] for g in generators for literal in g["literals"]]
    assert values
    assert all("EXAMPLE" in value for value in values)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_and_worker_pods_migrate_before_they_start(overlay: str) -> None:
    """An init container per pod (under an advisory lock): no Job whose template a release
    changes, and no pod of a new release runs on the old schema."""
    objects = render(f"overlays/{overlay}")
    assert not of_kind(objects, "Job")
    deployments = of_kind(objects, "Deployment")
    for name in ("gateway", "worker"):
        spec = pod_spec(deployments[name])
        (init,) = spec["initContainers"]
        assert init["command"] == ["harmrank", "migrate"]
        assert init["image"] == spec["containers"][0]["image"]
        assert init["envFrom"] == spec["containers"][0]["envFrom"]


def release(tmp_path: Path, tag: str, lease: str) -> tuple[Obj, ...]:
    """The prod overlay as a release pipeline renders it: a new image tag and a changed setting."""
    folder = tmp_path / tag
    folder.mkdir()
    images = [
        {"name": f"ghcr.io/example-org/harmrank-{s}", "newTag": tag}
        for s in ("gateway", "generator", "judge", "metrics")
    ]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(K8S / "overlays" / "prod", folder)],
        "images": images,
        "configMapGenerator": [
            {
                "name": "harmrank-config",
                "behavior": "merge",
                "literals": [f"HARMRANK_GATEWAY_LEASE_SECONDS={lease}"],
            }
        ],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return render(str(folder))


def immutable_parts(obj: Obj) -> Obj:
    """What the API server refuses to change on an existing object of this kind."""
    spec = obj.get("spec", {})
    kind = obj["kind"]
    if kind == "Job":
        return {"selector": spec.get("selector"), "template": spec["template"]}
    if kind in {"Deployment", "ReplicaSet", "DaemonSet"}:
        return {"selector": spec["selector"]}
    if kind == "StatefulSet":
        return {k: spec.get(k) for k in ("selector", "serviceName", "volumeClaimTemplates")}
    if kind == "PersistentVolumeClaim":
        return {k: v for k, v in spec.items() if k != "resources"}
    if kind in {"ConfigMap", "Secret"} and obj.get("immutable"):
        return {"data": obj.get("data")}
    return {}


def test_a_second_release_applies_over_the_first(tmp_path: Path) -> None:
    first = {(o["kind"], o["metadata"]["name"]): o for o in release(tmp_path, "0.1.0", "60")}
    second = {(o["kind"], o["metadata"]["name"]): o for o in release(tmp_path, "0.2.0", "90")}
    gateway = pod_spec(second[("Deployment", "gateway")])["containers"][0]
    assert gateway["image"].endswith(":0.2.0")  # the release did change something
    for key in first.keys() & second.keys():
        assert immutable_parts(first[key]) == immutable_parts(second[key]), key


def test_the_release_check_catches_a_job() -> None:
    job = {"kind": "Job", "metadata": {"name": "migrate"}, "spec": {"template": {"a": 1}}}
    changed = {**job, "spec": {"template": {"a": 2}}}
    assert immutable_parts(job) != immutable_parts(changed)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_deployments_leave_the_count_to_their_autoscaler(overlay: str) -> None:
    objects = render(f"overlays/{overlay}")
    deployments = of_kind(objects, "Deployment")
    for autoscaler in of_kind(objects, "HorizontalPodAutoscaler").values():
        target = deployments[autoscaler["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], target["metadata"]["name"]


def test_workers_get_the_time_to_finish_their_longest_task() -> None:
    settings = GatewaySettings()
    longest = settings.downstream_timeout_seconds * settings.call_attempts
    worker = pod_spec(of_kind(render("overlays/prod"), "Deployment")["worker"])
    assert worker["terminationGracePeriodSeconds"] >= longest


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tgi_has_half_an_hour_to_download_and_load(overlay: str) -> None:
    deployments = of_kind(render(f"overlays/{overlay}"), "Deployment")
    for name in TGI:
        probe = pod_spec(deployments[name])["containers"][0]["startupProbe"]
        window = (
            probe.get("initialDelaySeconds", 0) + probe["periodSeconds"] * probe["failureThreshold"]
        )
        assert window >= 1800, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_tgi_deployment_per_model_with_a_gpu_and_a_model_cache(overlay: str) -> None:
    objects = render(f"overlays/{overlay}")
    deployments, claims = of_kind(objects, "Deployment"), of_kind(objects, "PersistentVolumeClaim")
    models = set()
    for name in TGI:
        spec = pod_spec(deployments[name])
        (container,) = spec["containers"]
        assert container["image"].startswith("ghcr.io/huggingface/text-generation-inference:3.")
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        cache = [v for v in spec["volumes"] if v["name"] == "model-cache"]
        assert cache[0]["persistentVolumeClaim"]["claimName"] in claims
        models.add(container["args"][container["args"].index("--model-id") + 1])
    assert len(models) == len(TGI)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_and_judges_autoscale(overlay: str) -> None:
    autoscalers = of_kind(render(f"overlays/{overlay}"), "HorizontalPodAutoscaler")
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in autoscalers.values()}
    assert targets == {"worker", "judge"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_the_designed_flows(overlay: str) -> None:
    policies = of_kind(render(f"overlays/{overlay}"), "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    ingress_ports = {
        name: {p["port"] for rule in policy["spec"].get("ingress", []) for p in rule["ports"]}
        for name, policy in policies.items()
    }
    assert ingress_ports["gateway-ingress"] == {8000}
    assert ingress_ports["generator-ingress"] == {8001}
    assert ingress_ports["judge-ingress"] == {8002}
    assert ingress_ports["tgi-ingress"] == {8080}
    tgi = policies["tgi-ingress"]["spec"]["ingress"][0]["from"][0]["podSelector"]
    assert tgi["matchLabels"]["app.kubernetes.io/component"] == "generator"


def test_service_monitors_select_the_metrics_services() -> None:
    objects = render("overlays/prod")
    monitors = of_kind(objects, "ServiceMonitor")
    assert set(monitors) == {"harmrank", "harmrank-tgi"}
    services = of_kind(objects, "Service")
    scraped = {}
    for name, monitor in monitors.items():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        labels = monitor["spec"]["selector"]["matchLabels"]
        (model_rule,) = monitor["spec"]["selector"]["matchExpressions"]
        for service_name, service in services.items():
            service_labels = service["metadata"]["labels"]
            has_model = "harmrank.io/model" in service_labels
            if labels.items() <= service_labels.items() and has_model == (
                model_rule["operator"] == "Exists"
            ):
                ports = {p["name"] for p in service["spec"]["ports"]}
                assert monitor["spec"]["endpoints"][0]["port"] in ports
                scraped[service_name] = name
    assert scraped == {
        **dict.fromkeys(HARMRANK_SERVICES, "harmrank"),
        **dict.fromkeys(TGI, "harmrank-tgi"),
    }
    assert "ServiceMonitor" not in {o["kind"] for o in render("overlays/dev")}


# Optional components an operator adds to an overlay; each must render and validate with both.
OPTIONAL_COMPONENTS = {
    "dashboards": ROOT / "deploy" / "grafana",
    "otel-collector": K8S / "components" / "otel-collector",
    "grafana": K8S / "components" / "grafana",
}
# The grafana component includes the dashboards one: an overlay adds one or the other.
COMBINATIONS = (("dashboards", "otel-collector"), ("grafana", "otel-collector"))


def with_components(tmp_path: Path, overlay: str, components: list[Path]) -> tuple[Obj, ...]:
    folder = tmp_path / overlay
    folder.mkdir()
    own = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # As when the components are listed in the overlay itself: its namespace applies.
        "namespace": own["namespace"],
        "resources": [os.path.relpath(K8S / "overlays" / overlay, folder)],
        "components": [os.path.relpath(c, folder) for c in components],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return render(str(folder))


@pytest.mark.parametrize("combination", COMBINATIONS, ids="+".join)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_with_every_optional_component_validates(
    overlay: str, combination: tuple[str, ...], tmp_path: Path
) -> None:
    objects = with_components(tmp_path, overlay, [OPTIONAL_COMPONENTS[c] for c in combination])
    for obj in objects:
        if obj["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    without = {unhashed(o) for o in render(f"overlays/{overlay}")}
    assert without < {unhashed(o) for o in objects}


def unhashed(obj: Obj) -> tuple[str, str]:
    """Kind and name, without the content hash kustomize appends to generated objects."""
    name = obj["metadata"]["name"]
    if obj["kind"] in {"ConfigMap", "Secret"}:
        name = re.sub(r"-[a-z0-9]{10}$", "", name)
    return obj["kind"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_labelled_config_map_per_dashboard(overlay: str, tmp_path: Path) -> None:
    """kube-prometheus-stack's Grafana sidecar loads ConfigMaps labelled grafana_dashboard: "1"."""
    objects = with_components(tmp_path, overlay, [OPTIONAL_COMPONENTS["dashboards"]])
    labelled = [
        c
        for c in of_kind(objects, "ConfigMap").values()
        if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    shipped = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    assert len(labelled) == len(shipped)
    contents = {json.loads(v)["uid"]: json.loads(v) for c in labelled for v in c["data"].values()}
    assert contents == {
        json.loads(p.read_text())["uid"]: json.loads(p.read_text()) for p in shipped
    }
    assert all(c["metadata"]["namespace"].startswith("harmrank") for c in labelled)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_collector_component_sends_every_service_s_traces_to_it(
    overlay: str, tmp_path: Path
) -> None:
    objects = with_components(tmp_path, overlay, [OPTIONAL_COMPONENTS["otel-collector"]])
    config_maps = of_kind(objects, "ConfigMap")
    collector = of_kind(objects, "Service")["otel-collector"]
    ports = {p["name"]: p["port"] for p in collector["spec"]["ports"]}
    for name in ("gateway", "worker", "generator", "judge", "metrics"):
        (container,) = pod_spec(of_kind(objects, "Deployment")[name])["containers"]
        refs = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
        endpoints = {config_maps[r]["data"].get("OTEL_EXPORTER_OTLP_ENDPOINT") for r in refs}
        assert endpoints == {f"http://otel-collector:{ports['otlp-http']}"}, name
    # Without the component the setting is absent, so the services trace nothing.
    plain = of_kind(render(f"overlays/{overlay}"), "ConfigMap")
    assert all("OTEL_EXPORTER_OTLP_ENDPOINT" not in c.get("data", {}) for c in plain.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_grafana_component_provisions_datasources_and_every_dashboard(
    overlay: str, tmp_path: Path
) -> None:
    objects = with_components(tmp_path, overlay, [OPTIONAL_COMPONENTS["grafana"]])
    config_maps = of_kind(objects, "ConfigMap")
    spec = pod_spec(of_kind(objects, "Deployment")["grafana"])
    volumes = {v["name"]: v for v in spec["volumes"]}
    projected = {s["configMap"]["name"] for s in volumes["dashboards"]["projected"]["sources"]}
    labelled = {
        name
        for name, c in config_maps.items()
        if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    }
    assert projected == labelled
    assert len(labelled) == len(list((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")))
    provisioning = config_maps[volumes["provisioning"]["configMap"]["name"]]["data"]
    sources = yaml.safe_load(provisioning["datasources.yaml"])["datasources"]
    assert {s["type"] for s in sources} == {"prometheus", "grafana-postgresql-datasource"}
    (postgres,) = [s for s in sources if s["type"] == "grafana-postgresql-datasource"]
    reader_sql = (ROOT / "deploy" / "grafana" / "reader-role.sql").read_text()
    assert f"CREATE ROLE {postgres['user']} " in reader_sql  # the read-only role, not the owner
    (container,) = spec["containers"]
    variables = {e["name"] for e in container["env"]}
    for ref in (c["configMapRef"]["name"] for c in container["envFrom"]):
        variables |= set(config_maps[ref]["data"])
    expanded = set(re.findall(r"\$\{(\w+)\}", provisioning["datasources.yaml"]))
    assert expanded <= variables, expanded - variables
    if overlay == "prod":  # the Secret operators create, by its documented name
        assert "grafana" in secret_references(objects)
