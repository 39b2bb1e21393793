import Testing
@Test func placeholder_RMRSimTests() { #expect(Bool(true)) }
