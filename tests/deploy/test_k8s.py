"""The Kubernetes manifests: every overlay renders with kustomize (``kubectl kustomize``) and every
rendered object validates against the Kubernetes schemas (``kubernetes-validate``, strict: no
unknown fields); then the properties the deployment promises are checked object by object."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from functools import cache
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from tests.deploy.conftest import ROOT

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
        for container in spec["containers"]:
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
    assert refs["secretRef"] in secrets
    assert "HARMRANK_DATABASE_URL" not in config_maps[refs["configMapRef"]]["data"]
    judge = pod_spec(of_kind(objects, "Deployment")["judge"])
    mounted = {v["secret"]["secretName"] for v in judge["volumes"] if "secret" in v}
    assert mounted <= set(secrets)
    for container in (c for w in workloads(objects) for c in pod_spec(w)["containers"]):
        for variable in container.get("env", []):
            assert "KEY" not in variable["name"] or "valueFrom" in variable


def test_the_example_secrets_are_marked_as_examples() -> None:
    kustomization = (K8S / "base" / "kustomization.yaml").read_text()
    assert "EXAMPLE VALUES, NOT SECRETS" in kustomization
    generators = yaml.safe_load(kustomization)["secretGenerator"]
    values = [literal.partition("=")[2] for g in generators for literal in g["literals"]]
    assert values
    assert all("EXAMPLE" in value for value in values)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_as_a_job(overlay: str) -> None:
    (job,) = of_kind(render(f"overlays/{overlay}"), "Job").values()
    assert pod_spec(job)["containers"][0]["command"] == ["harmrank", "migrate"]
    assert pod_spec(job)["restartPolicy"] in {"OnFailure", "Never"}


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
