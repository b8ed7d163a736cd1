"""The schema creates and round-trips a row on every supported database."""

from sqlmodel import Session, select

from records.models import Region


def test_region_round_trip(records_engine):
    with Session(records_engine) as session:
        session.add(Region(code="r1", name_zh="西湖街道", name_en="Xihu Street"))
        session.commit()
    with Session(records_engine) as session:
        region = session.exec(select(Region)).one()
    assert (region.code, region.name_zh) == ("r1", "西湖街道")
