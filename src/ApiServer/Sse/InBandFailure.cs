namespace ApiServer.Sse;

/// <summary>
/// A request feature: set by a stream that answered 200 and then failed in band (an error event after the headers), read by
/// whatever must not treat that exchange as a success (Idempotency-Key keeps no such answer).
/// </summary>
public sealed class InBandFailure
{
    public bool Failed { get; private set; }

    public static void Mark(HttpContext context)
    {
        if (context.Features.Get<InBandFailure>() is { } feature)
            feature.Failed = true;
    }
}
