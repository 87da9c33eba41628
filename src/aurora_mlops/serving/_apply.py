"""Apply a rendered InferenceService through the Kubernetes API (``deploy --apply``)."""

from __future__ import annotations

from typing import Any

from aurora_mlops.errors import AuroraMLOpsError

__all__ = ["apply_inference_service"]

_GROUP, _VERSION, _PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


def apply_inference_service(isvc: dict[str, Any], api_client: Any) -> str:
    """Create the InferenceService, or merge its spec, labels and annotations if it exists.

    A merge patch keeps what KServe wrote (status, its own annotations) and makes a canary a
    change of the existing service, which is what KServe's canary rollout needs: the last
    ready revision keeps ``100 - canaryTrafficPercent`` of the traffic.

    Args:
        isvc: From :func:`render_inference_service`.
        api_client: A ``kubernetes.client.ApiClient`` (the CLI builds it from the kubeconfig
            or the pod's ServiceAccount).

    Returns:
        ``"created"`` or ``"updated"``.

    Raises:
        AuroraMLOpsError: KServe is not installed, or the API refused the object.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = client.CustomObjectsApi(api_client)
    meta = isvc["metadata"]
    args = (_GROUP, _VERSION, meta["namespace"], _PLURAL)
    try:
        try:
            api.get_namespaced_custom_object(*args, meta["name"])
        except ApiException as e:
            if e.status != 404:
                raise
            api.create_namespaced_custom_object(*args, isvc)
            return "created"
        # A merge patch keeps fields it leaves out: null removes a canary left by an earlier
        # deploy, so deploying without one sends all traffic to the new revision.
        predictor = {"canaryTrafficPercent": None, **isvc["spec"]["predictor"]}
        patch = {"metadata": {"labels": meta["labels"], "annotations": meta["annotations"]},
                 "spec": {**isvc["spec"], "predictor": predictor}}
        api.patch_namespaced_custom_object(*args, meta["name"], patch)
        return "updated"
    except ApiException as e:
        what = "is KServe installed?" if e.status == 404 else (e.reason or "")
        raise AuroraMLOpsError(
            f"InferenceService {meta['namespace']}/{meta['name']}: the API server answered "
            f"{e.status} ({what})") from e
