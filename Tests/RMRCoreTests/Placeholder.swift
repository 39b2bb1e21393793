import Testing
@Test func placeholder_RMRCoreTests() { #expect(Bool(true)) }
