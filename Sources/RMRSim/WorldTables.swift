// Small lookup tables for the world's hot paths (a message send looks up its destination host
// and its connection; a dictionary lookup hashes the key with SipHash).

/// Connections keyed by `World.pairKey` (below `Network.maxHosts`²): an array of optionals,
/// grown on first use of a key.
struct ConnectionTable {
    private var slots: [Connection?] = []

    subscript(key: Int) -> Connection? {
        get { key < slots.count ? slots[key] : nil }
        set {
            if key >= slots.count {
                guard newValue != nil else { return }
                slots.append(contentsOf: repeatElement(nil, count: key + 1 - slots.count))
            }
            slots[key] = newValue
        }
    }
}

/// Host index by address: a linear scan (a world has a handful of hosts; comparing two short
/// strings is cheaper than hashing one).
struct AddressTable {
    private var addresses: [String] = []
    private var indices: [Int] = []

    subscript(address: String) -> Int? {
        get {
            for i in addresses.indices where addresses[i] == address { return indices[i] }
            return nil
        }
        set {
            if let i = addresses.firstIndex(of: address) {
                if let v = newValue { indices[i] = v } else { addresses.remove(at: i); indices.remove(at: i) }
            } else if let v = newValue {
                addresses.append(address)
                indices.append(v)
            }
        }
    }
}
