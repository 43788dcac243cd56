"""The constants module agrees with astropy.constants and with the values the cube contract states."""

import astropy.constants as c
import astropy.units as u
import pytest

from dpotcube import constants


def test_contract_values():
    assert constants.G_KPC_KM2_S2_PER_MSUN == 4.300917e-6  # SCIENCE.md, CUBE_SPEC v1
    assert constants.MSUN_PER_PC3_TO_GEV_PER_CM3 == 37.97
    assert constants.KM2_S2_PER_KPC_TO_M_S2 == 3.2408e-14
    assert constants.MSUN_PER_KPC3_TO_MSUN_PER_PC3 == pytest.approx(1e-9, rel=1e-15)


def test_agree_with_astropy_constants():
    assert constants.G_KPC_KM2_S2_PER_MSUN == pytest.approx(c.G.to_value(u.kpc * u.km**2 / u.s**2 / u.Msun), rel=1e-7)
    gev = (u.Msun / u.pc**3 * c.c**2).to_value(u.GeV / u.cm**3)
    assert constants.MSUN_PER_PC3_TO_GEV_PER_CM3 == pytest.approx(gev, rel=2e-4)
    assert constants.KMS_PER_KPC_TO_PER_GYR == pytest.approx((u.km / u.s / u.kpc).to(1 / u.Gyr), rel=1e-15)
    numbers = [getattr(constants, n) for n in dir(constants) if n.isupper() and "KPC" in n]
    assert all(isinstance(v, float) or (isinstance(v, tuple) and all(isinstance(e, float) for e in v)) for v in numbers)
