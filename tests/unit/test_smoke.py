async def test_start_page_renders_sender_field(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert 'id="email"' in await response.get_data(as_text=True)


async def test_sign_in_reaches_compose(client, sign_in):
    await sign_in("liisa@example.com")
    response = await client.get("/compose")
    assert response.status_code == 200
    assert "liisa@example.com" in await response.get_data(as_text=True)
