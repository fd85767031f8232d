/// `transform` of every item, at most `limit` running at once; the results in item order.
/// (`--concurrency` of the DNS, FTP and SNMP clients.)
func concurrentMap<Item: Sendable, Output: Sendable>(
    _ items: [Item], limit: Int, _ transform: @escaping @Sendable (Item) async -> Output
) async -> [Output] {
    await withTaskGroup(of: (Int, Output).self) { group in
        var results = [Output?](repeating: nil, count: items.count)
        var next = 0
        func launch() {
            let index = next
            next += 1
            group.addTask { (index, await transform(items[index])) }
        }
        while next < min(max(1, limit), items.count) { launch() }
        for await (index, output) in group {
            results[index] = output
            if next < items.count { launch() }
        }
        return results.map { $0! }
    }
}
