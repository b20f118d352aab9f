"""The gateway clients, one module each, and the registry HEALTHCHECK_GATEWAY picks from."""

from collections.abc import Iterator, Mapping

_KINDS = ("wrapper", "waha", "evolution", "wppconnect")


class _Registry(Mapping):
    """HEALTHCHECK_GATEWAY -> client class; a run imports only the client it uses."""

    def __getitem__(self, kind: str) -> type:
        if kind == "wrapper":
            from .wrapper import WrapperGateway as client
        elif kind == "waha":
            from .waha import WahaGateway as client
        elif kind == "evolution":
            from .evolution import EvolutionGateway as client
        elif kind == "wppconnect":
            from .wppconnect import WppconnectGateway as client
        else:
            raise KeyError(kind)
        return client

    def __iter__(self) -> Iterator[str]:
        return iter(_KINDS)

    def __len__(self) -> int:
        return len(_KINDS)


GATEWAYS = _Registry()
