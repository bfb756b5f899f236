/// An abstract argumentation framework (Dung 1995): arguments and an attack relation between them.
///
/// The disputed-facts projection builds one framework per fact (claims and evidence as
/// arguments); tests build frameworks by hand. Arguments keep the order they were given in, and
/// every result lists them in that order, so labellings are deterministic.
public struct ArgumentationFramework<Argument: Hashable & Sendable>: Sendable {
    /// The arguments, in the order given, without duplicates.
    public private(set) var arguments: [Argument] = []
    /// For each argument, the arguments that attack it, in the order the attacks were added.
    public private(set) var attackers: [Argument: [Argument]] = [:]

    /// Creates a framework.
    /// - Parameters:
    ///   - arguments: the arguments; a repeated argument is kept once, at its first position.
    ///   - attacks: `(attacker, target)` pairs; pairs naming an argument not in `arguments` are
    ///     ignored, and a repeated pair counts once.
    public init(arguments: [Argument], attacks: [(Argument, Argument)] = []) {
        var seen = Set<Argument>()
        for argument in arguments where seen.insert(argument).inserted {
            self.arguments.append(argument)
            attackers[argument] = []
        }
        for (attacker, target) in attacks {
            addAttack(from: attacker, on: target)
        }
    }

    /// Adds the attack `attacker → target`, once; ignored if either is not an argument.
    public mutating func addAttack(from attacker: Argument, on target: Argument) {
        guard attackers[attacker] != nil, var list = attackers[target], !list.contains(attacker) else { return }
        list.append(attacker)
        attackers[target] = list
    }

    /// Whether `attacker` attacks `target`.
    public func attacks(_ attacker: Argument, _ target: Argument) -> Bool {
        attackers[target]?.contains(attacker) ?? false
    }

    /// The grounded labelling: the least fixed point of "IN if every attacker is OUT, OUT if some
    /// attacker is IN", every other argument UNDEC (Caminada 2006, "On the issue of
    /// reinstatement in argumentation", §4; equivalent to Dung's grounded extension).
    ///
    /// Computed in rounds from the empty labelling: in each round every still-unlabelled
    /// argument whose attackers are all OUT becomes IN, then every still-unlabelled argument with
    /// an IN attacker becomes OUT. The round an argument was labelled in is kept for explanations.
    public func groundedLabelling() -> GroundedLabelling<Argument> {
        var labels: [Argument: ArgumentLabel] = [:]
        var rounds: [Argument: Int] = [:]
        var round = 0
        while true {
            round += 1
            // 1. Arguments all of whose attackers are already OUT (or that have none) become IN.
            let newIn = arguments.filter { a in
                labels[a] == nil && (attackers[a] ?? []).allSatisfy { labels[$0] == .rejected }
            }
            for a in newIn {
                labels[a] = .accepted
                rounds[a] = round
            }
            // 2. Arguments with an IN attacker become OUT.
            let newOut = arguments.filter { a in
                labels[a] == nil && (attackers[a] ?? []).contains { labels[$0] == .accepted }
            }
            for a in newOut {
                labels[a] = .rejected
                rounds[a] = round
            }
            // 3. Nothing changed: the fixed point is reached; the rest is UNDEC.
            if newIn.isEmpty && newOut.isEmpty { break }
        }
        for a in arguments where labels[a] == nil { labels[a] = .undecided }
        return GroundedLabelling(framework: self, labels: labels, rounds: rounds)
    }
}

/// An argument's status under grounded semantics.
public enum ArgumentLabel: String, Sendable, Hashable, CaseIterable, Codable {
    /// IN: every attacker is rejected (or there is none).
    case accepted
    /// OUT: some attacker is accepted.
    case rejected
    /// UNDEC: neither; typically an attacker sits on an unresolved cycle.
    case undecided
}

/// The grounded labelling of a framework, with explanations.
public struct GroundedLabelling<Argument: Hashable & Sendable>: Sendable {
    /// The framework labelled.
    public let framework: ArgumentationFramework<Argument>
    /// Every argument's label.
    public let labels: [Argument: ArgumentLabel]
    /// The round in which each IN or OUT argument was labelled (1 = unattacked or attacked only
    /// by arguments rejected in an earlier round). UNDEC arguments have none.
    public let rounds: [Argument: Int]

    /// The label of `argument` (undecided for an argument not in the framework).
    public func label(of argument: Argument) -> ArgumentLabel {
        labels[argument] ?? .undecided
    }

    /// The grounded extension: the accepted arguments, in framework order.
    public var accepted: [Argument] { framework.arguments.filter { labels[$0] == .accepted } }

    /// The attacker that decides `argument`'s label, if one does: for a rejected argument the
    /// accepted attacker labelled earliest (the most direct reason); for an undecided argument
    /// the first undecided attacker; accepted arguments have none.
    public func decisiveAttacker(of argument: Argument) -> Argument? {
        let attackers = framework.attackers[argument] ?? []
        switch label(of: argument) {
        case .accepted:
            return nil
        case .rejected:
            return attackers.filter { labels[$0] == .accepted }.min { (rounds[$0] ?? 0) < (rounds[$1] ?? 0) }
        case .undecided:
            return attackers.first { labels[$0] == .undecided }
        }
    }

    /// A one-line reason for `argument`'s label, e.g. "rejected: attacked by evidence E-3,
    /// which nothing attacks". `describe` names an argument ("claim C-1").
    public func reason(for argument: Argument, describe: (Argument) -> String) -> String {
        let attackers = framework.attackers[argument] ?? []
        switch label(of: argument) {
        case .accepted:
            if attackers.isEmpty { return "accepted: nothing attacks it" }
            return "accepted: every attacker is rejected (" + attackers.map(describe).joined(separator: ", ") + ")"
        case .rejected:
            guard let decisive = decisiveAttacker(of: argument) else { return "rejected" }
            let theirs = framework.attackers[decisive] ?? []
            if theirs.isEmpty { return "rejected: attacked by \(describe(decisive)), which nothing attacks" }
            return "rejected: attacked by \(describe(decisive)), which is accepted because every attacker of it is rejected"
        case .undecided:
            if attackers.contains(argument) { return "undecided: it attacks itself" }
            guard let decisive = decisiveAttacker(of: argument) else { return "undecided" }
            if framework.attacks(argument, decisive) {
                return "undecided: \(describe(decisive)) and it attack each other, and nothing else settles either"
            }
            return "undecided: attacked by \(describe(decisive)), which is itself undecided"
        }
    }
}
