import Testing
@Test func placeholder_RMRControlTests() { #expect(Bool(true)) }
