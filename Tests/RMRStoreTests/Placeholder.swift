import Testing
@Test func placeholder_RMRStoreTests() { #expect(Bool(true)) }
