public import LedgerCore

/// The projections available by name, in registration order.
///
/// New projections are added by registering them; the replay engine works on any
/// ``Projection`` and needs no change.
public struct ProjectionRegistry: Sendable {
    /// The registered projections, in registration order.
    public private(set) var projections: [any Projection] = []

    /// An empty registry.
    public init() {}

    /// The built-in projections: parties and keys, disputed facts, evidence index, timeline.
    public static var builtIn: ProjectionRegistry { builtIn(verifiesSignatures: true) }

    /// The built-in projections, those that check statements re-verifying each signature or
    /// not, but from `verifyingFrom` on (see ``DisputedFactsProjection/verifiesSignatures``).
    public static func builtIn(verifiesSignatures: Bool, verifyingFrom: UInt64 = .max) -> ProjectionRegistry {
        var registry = ProjectionRegistry()
        // The names are fixed and distinct, so registration cannot fail.
        try? registry.register(PartiesProjection())
        try? registry.register(DisputedFactsProjection(verifiesSignatures: verifiesSignatures, verifyingFrom: verifyingFrom))
        try? registry.register(EvidenceIndexProjection(verifiesSignatures: verifiesSignatures, verifyingFrom: verifyingFrom))
        try? registry.register(TimelineProjection(verifiesSignatures: verifiesSignatures, verifyingFrom: verifyingFrom))
        return registry
    }

    /// Adds `projection`.
    /// - Throws: ``LedgerError/Code/usage`` if its name is not 1–64 characters of `a–z 0–9 -`
    ///   (it becomes part of snapshot file names), its version is below 1, or a projection of
    ///   that name is already registered.
    public mutating func register(_ projection: some Projection) throws(LedgerError) {
        let name = projection.name
        guard Self.isValidName(name) else {
            throw LedgerError(.usage, "The projection name \"\(name)\" is not usable: use 1–64 characters from a–z 0–9 and '-', starting with a letter.")
        }
        guard projection.version >= 1 else {
            throw LedgerError(.usage, "Projection \"\(name)\" has version \(projection.version); versions start at 1.")
        }
        guard self.projection(named: name) == nil else {
            throw LedgerError(.usage, "A projection named \"\(name)\" is already registered.")
        }
        projections.append(projection)
    }

    /// The projection called `name`, if registered.
    public func projection(named name: String) -> (any Projection)? {
        projections.first { $0.name == name }
    }

    /// The registered names, in registration order.
    public var names: [String] { projections.map(\.name) }

    static func isValidName(_ name: String) -> Bool {
        let utf8 = Array(name.utf8)
        guard (1...64).contains(utf8.count), let first = utf8.first, (0x61...0x7a).contains(first) else { return false }
        return utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "-") }
    }
}
