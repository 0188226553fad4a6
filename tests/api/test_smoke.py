from tests.factories import make_lead, make_member


async def test_member_creates_and_reads_a_lead(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone="+1 (415) 555-0100")
    response = await client.get(f"/api/v1/leads/{lead['id']}", headers=owner.headers)
    assert response.status_code == 200
    assert response.json()["phone"] == "+14155550100"
