"""The gateway clients, one module each, and the registry HEALTHCHECK_GATEWAY picks from."""

from collections.abc import Iterator, Mapping
from importlib import import_module

#: HEALTHCHECK_GATEWAY -> (its module in this folder, its client class): one line per gateway.
CLIENTS = {
    "wrapper": ("wrapper", "WrapperGateway"),
    "waha": ("waha", "WahaGateway"),
    "evolution": ("evolution", "EvolutionGateway"),
    "wppconnect": ("wppconnect", "WppconnectGateway"),
}


class _Registry(Mapping):
    """HEALTHCHECK_GATEWAY -> client class; a run imports only the client it uses."""

    def __getitem__(self, kind: str) -> type:
        module, name = CLIENTS[kind]
        return getattr(import_module(f"{__name__}.{module}"), name)

    def __iter__(self) -> Iterator[str]:
        return iter(CLIENTS)

    def __len__(self) -> int:
        return len(CLIENTS)


GATEWAYS = _Registry()
