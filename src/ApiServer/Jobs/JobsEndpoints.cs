using ApiServer.Access;
using ApiServer.Data;
using ApiServer.Configuration;
using ApiServer.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace ApiServer.Jobs;

/// <summary>
/// Scheduled jobs: /api/jobs. A job runs its prompt as a run (/v1/runs machinery) on its schedule; its firings are listed under
/// /api/jobs/{id}/runs. Routes and shapes follow the seed server's job API.
/// </summary>
public static class JobsEndpoints
{
    public static IServiceCollection AddJobs(this IServiceCollection services)
    {
        services.AddOptions<JobsOptions>().BindConfiguration(JobsOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, JobsJsonContext.Default));
        services.AddSingleton<IJobStore>(sp =>
        {
            var dataDir = sp.GetRequiredService<IOptions<ApiServerOptions>>().Value.ResolvedDataDir;
            var database = SqliteDatabase.Open(dataDir, "jobs.db", SqliteJobStore.Migrations, sp.GetRequiredService<ILogger<SqliteJobStore>>());
            return new SqliteJobStore(database, sp.GetRequiredService<IOptions<JobsOptions>>().Value.HistoryPerJob);
        });
        services.AddHttpClient(WebhookDelivery.ClientName, c => c.Timeout = TimeSpan.FromSeconds(30))
            .ConfigurePrimaryHttpMessageHandler(WebhookDelivery.CreateHandler);
        services.AddSingleton<WebhookDelivery>();
        services.AddSingleton<JobRunner>();
        services.AddSingleton<JobScheduler>();
        services.AddHostedService(sp => sp.GetRequiredService<JobScheduler>());
        return services;
    }

    public static WebApplication MapJobs(this WebApplication app)
    {
        var group = app.MapGroup("/api/jobs").WithTags("Jobs");
        group.MapGet("", ListAsync)
            .WithName("ListJobs")
            .WithSummary("Lists scheduled jobs; ?include_disabled=true also lists paused and finished ones.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized);
        group.MapPost("", CreateAsync)
            .WithName("CreateJob")
            .WithSummary("Creates a job that runs its prompt on a schedule (interval, one-shot, cron or a plain form such as 'weekdays at 9am').")
            .Accepts<CreateJobBody>("application/json")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status409Conflict, StatusCodes.Status413PayloadTooLarge);
        group.MapGet("/{job_id}", GetAsync)
            .WithName("GetJob")
            .WithSummary("A job with its state, next and last run times, and last status.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapPatch("/{job_id}", UpdateAsync)
            .WithName("UpdateJob")
            .WithSummary("Changes some of a job's fields; a new schedule or time zone recomputes its next run.")
            .Accepts<UpdateJobBody>("application/json")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound, StatusCodes.Status413PayloadTooLarge);
        group.MapDelete("/{job_id}", DeleteAsync)
            .WithName("DeleteJob")
            .WithSummary("Deletes a job and its firing history; a firing still running is stopped.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapPost("/{job_id}/pause", PauseAsync)
            .WithName("PauseJob")
            .WithSummary("Stops a job from firing until it is resumed (a firing already running goes on).")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapPost("/{job_id}/resume", ResumeAsync)
            .WithName("ResumeJob")
            .WithSummary("Resumes a paused job from its next time after now; times missed while paused are not caught up.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapPost("/{job_id}/run", RunNowAsync)
            .WithName("RunJobNow")
            .WithSummary("Fires the job once now without changing its schedule; answers 202 with the firing (its run_id once it holds a run slot).")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound, StatusCodes.Status409Conflict);
        group.MapGet("/{job_id}/runs", ListRunsAsync)
            .WithName("ListJobRuns")
            .WithSummary("The job's firings, newest first, paged with ?limit= (1-100, default 20) and ?before=<last_id>.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<Ok<JobList>> ListAsync(HttpContext context, [FromServices] IJobStore store)
    {
        var includeDisabled = JobQuery.Bool(context.Request, "include_disabled");
        var jobs = await store.ListAsync(Owner.Of(context), includeDisabled, context.RequestAborted);
        return TypedResults.Ok(new JobList([.. jobs.Select(JobJson.View)]));
    }

    private static async Task<Ok<JobEnvelope>> CreateAsync(HttpContext context, [FromServices] IJobStore store, [FromServices] JobScheduler scheduler,
        [FromServices] IOptions<JobsOptions> options, [FromServices] TimeProvider time)
    {
        JobRequest request;
        using (var document = await JsonRequest.ReadObjectAsync(context.Request, context.RequestAborted))
            request = JsonRequest.Parse(document, body => JobRequest.Parse(body, create: true, options.Value));
        var owner = Owner.Of(context);
        var job = JobEditor.Create(request, options.Value, time.GetUtcNow()) with { Owner = owner.Name };
        if (await store.CountAsync(context.RequestAborted) >= options.Value.MaxJobs)
            throw new ApiException(StatusCodes.Status409Conflict, $"This server keeps at most {options.Value.MaxJobs} jobs; delete one first.", code: "too_many_jobs");
        await store.InsertAsync(job, context.RequestAborted);
        scheduler.Wake();
        return TypedResults.Ok(new JobEnvelope(JobJson.View((await store.GetAsync(job.Id, owner, context.RequestAborted))!)));
    }

    private static async Task<Ok<JobEnvelope>> GetAsync(HttpContext context, [FromRoute(Name = "job_id")] string jobId, [FromServices] IJobStore store) =>
        TypedResults.Ok(new JobEnvelope(JobJson.View(await FindAsync(store, jobId, Owner.Of(context), context.RequestAborted))));

    private static async Task<Ok<JobEnvelope>> UpdateAsync(HttpContext context, [FromRoute(Name = "job_id")] string jobId, [FromServices] IJobStore store,
        [FromServices] JobScheduler scheduler, [FromServices] IOptions<JobsOptions> options, [FromServices] TimeProvider time)
    {
        var token = context.RequestAborted;
        var owner = Owner.Of(context);
        await FindAsync(store, jobId, owner, token);
        JobRequest request;
        using (var document = await JsonRequest.ReadObjectAsync(context.Request, token))
            request = JsonRequest.Parse(document, body => JobRequest.Parse(body, create: false, options.Value));
        return TypedResults.Ok(new JobEnvelope(JobJson.View(await ChangeAsync(store, scheduler, jobId, owner, job => JobEditor.Apply(job, request, options.Value, time.GetUtcNow()), token))));
    }

    private static async Task<Ok<JobDeleted>> DeleteAsync(HttpContext context, [FromRoute(Name = "job_id")] string jobId, [FromServices] IJobStore store,
        [FromServices] JobRunner runner, [FromServices] JobScheduler scheduler)
    {
        JobRequestId.Check(jobId);
        if (!await store.DeleteAsync(jobId, Owner.Of(context), context.RequestAborted))
            throw NotFound(jobId);
        runner.StopJob(jobId);
        scheduler.Wake();
        return TypedResults.Ok(new JobDeleted(jobId, true));
    }

    private static Task<Ok<JobEnvelope>> PauseAsync(HttpContext context, [FromRoute(Name = "job_id")] string jobId, [FromServices] IJobStore store,
        [FromServices] JobScheduler scheduler, [FromServices] TimeProvider time) =>
        SetEnabledAsync(store, scheduler, jobId, Owner.Of(context), enabled: false, time, context.RequestAborted);

    private static Task<Ok<JobEnvelope>> ResumeAsync(HttpContext context, [FromRoute(Name = "job_id")] string jobId, [FromServices] IJobStore store,
        [FromServices] JobScheduler scheduler, [FromServices] TimeProvider time) =>
        SetEnabledAsync(store, scheduler, jobId, Owner.Of(context), enabled: true, time, context.RequestAborted);

    private static async Task<Ok<JobEnvelope>> SetEnabledAsync(IJobStore store, JobScheduler scheduler, string jobId, Owner owner, bool enabled, TimeProvider time,
        CancellationToken cancellationToken)
    {
        var job = await ChangeAsync(store, scheduler, jobId, owner, job =>
        {
            if (job.Enabled == enabled)
                return job;
            var now = time.GetUtcNow();
            var changed = job with { Enabled = enabled, UpdatedAt = now };
            return changed with { NextRunAt = enabled && !job.Finished ? JobEditor.Resume(changed, now, job.Zone) : null };
        }, cancellationToken);
        return TypedResults.Ok(new JobEnvelope(JobJson.View(job)));
    }

    private static async Task<Accepted<JobRunStarted>> RunNowAsync(HttpContext context, [FromRoute(Name = "job_id")] string jobId, [FromServices] IJobStore store,
        [FromServices] JobRunner runner, [FromServices] TimeProvider time)
    {
        var cancellationToken = context.RequestAborted;
        var owner = Owner.Of(context);
        var job = await FindAsync(store, jobId, owner, cancellationToken);
        var firing = await store.StartManualAsync(jobId, time.GetUtcNow(), cancellationToken)
            ?? throw new ApiException(StatusCodes.Status409Conflict, $"Job '{jobId}' is already running; a job never overlaps itself.", "job_id", "job_running");
        runner.Launch(job, firing);
        var current = await FindAsync(store, jobId, owner, cancellationToken);
        return TypedResults.Accepted($"/api/jobs/{jobId}/runs", new JobRunStarted(JobJson.View(current), JobJson.View(firing, job.Zone)));
    }

    private static async Task<Ok<FiringList>> ListRunsAsync(HttpContext context, [FromRoute(Name = "job_id")] string jobId, [FromServices] IJobStore store)
    {
        var token = context.RequestAborted;
        var job = await FindAsync(store, jobId, Owner.Of(context), token);
        var limit = JobQuery.Int(context.Request, "limit", 1, 100) ?? 20;
        var before = JobQuery.Long(context.Request, "before");
        var page = await store.FiringsAsync(jobId, before, limit + 1, token);
        var runs = page.Take(limit).Select(f => JobJson.View(f, job.Zone)).ToList();
        return TypedResults.Ok(new FiringList(runs, page.Count > limit, runs.Count > 0 ? runs[^1].Id : null));
    }

    /// <summary>Read, change, write with the store's optimistic check; a firing claimed in between makes it read again.</summary>
    private static async Task<JobRecord> ChangeAsync(IJobStore store, JobScheduler scheduler, string jobId, Owner owner, Func<JobRecord, JobRecord> change,
        CancellationToken token)
    {
        for (var attempt = 0; ; attempt++)
        {
            var job = await FindAsync(store, jobId, owner, token);
            var updated = change(job);
            if (ReferenceEquals(updated, job))
                return job;
            if (await store.UpdateAsync(job, updated, token))
            {
                scheduler.Wake();
                return await FindAsync(store, jobId, owner, token);
            }
            if (attempt == 5)
                throw new ApiException(StatusCodes.Status409Conflict, $"Job '{jobId}' kept changing while it was being updated; try again.", "job_id", "job_busy");
        }
    }

    /// <summary>The job, when this caller may see it: another owner's job is answered exactly as an unknown id.</summary>
    private static async Task<JobRecord> FindAsync(IJobStore store, string jobId, Owner owner, CancellationToken token)
    {
        JobRequestId.Check(jobId);
        return await store.GetAsync(jobId, owner, token) ?? throw NotFound(jobId);
    }

    private static ApiException NotFound(string jobId) => ApiException.NotFound($"No job with id '{jobId}'.", "job_not_found", "job_id");
}
