import emberwatch


def test_all_is_sorted_and_every_name_exists():
    assert emberwatch.__all__ == sorted(emberwatch.__all__)
    for name in emberwatch.__all__:
        assert hasattr(emberwatch, name)


def test_every_error_derives_from_the_root():
    for name in emberwatch.__all__:
        value = getattr(emberwatch, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, emberwatch.EmberwatchError)
