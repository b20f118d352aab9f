"""The gateway clients, one module each, and the registry HEALTHCHECK_GATEWAY picks from."""

from .evolution import EvolutionGateway
from .waha import WahaGateway
from .wppconnect import WppconnectGateway
from .wrapper import WrapperGateway

GATEWAYS = {"wrapper": WrapperGateway, "waha": WahaGateway, "evolution": EvolutionGateway,
            "wppconnect": WppconnectGateway}
