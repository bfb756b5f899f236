import Dispatch

/// `body(0)`, …, `body(count - 1)` run on every core, answered in order: the one way the package
/// shares work between cores (checking signatures, decoding records, building facts).
package func concurrently<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
    var out = [T?](repeating: nil, count: count)
    out.withUnsafeMutableBufferPointer { buffer in
        let results = Results(buffer: buffer)
        DispatchQueue.concurrentPerform(iterations: count) { i in results.buffer[i] = body(i) }
    }
    return out.map { $0! }
}

/// Lets concurrent iterations write distinct elements of one buffer.
private struct Results<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<T?>
}
