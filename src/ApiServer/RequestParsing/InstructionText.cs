namespace ApiServer.RequestParsing;

/// <summary>
/// How the pieces of a turn's instructions become one: the request's instructions, then the system and developer messages of
/// its input (or of the stored conversation), in order, blank pieces left out. Every API builds them the same way.
/// </summary>
public static class InstructionText
{
    public static string? Join(IEnumerable<string?> parts)
    {
        var kept = parts.Where(p => !string.IsNullOrEmpty(p)).ToList();
        return kept.Count == 0 ? null : string.Join("\n\n", kept);
    }
}
