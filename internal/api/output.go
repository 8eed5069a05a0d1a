package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/httpapi"
	"github.com/autogate/autogate/internal/wire"
)

type outputInput struct {
	ID          string `path:"id" maxLength:"64"`
	From        string `query:"from" maxLength:"41" doc:"resume after these byte offsets, <stdout>.<stderr> (an event ID); default 0.0, the whole output"`
	LastEventID string `header:"Last-Event-ID" maxLength:"41" doc:"as from; browsers' EventSource sends it when it reconnects, and it wins over from"`
}

// registerOutput serves GET /v1/executions/{id}/output: the run's output as
// server-sent events while it runs, then an end event.
func (s *Server) registerOutput(hapi huma.API) {
	op := s.api.Op(http.MethodGet, "/v1/executions/{id}/output", "follow-execution-output",
		"follow an execution's output", "executions", auth.Read)
	op.Description = "Streams the stored (redacted, bounded) stdout and stderr from the given offsets as they are written: " +
		"`output` events whose ID is the byte offsets after them, then one `end` event with the status and exit code, and the stream closes. " +
		"A dropped connection resumes with Last-Event-ID (or ?from=)."
	s.api.EventStreamResponse(&op, map[string]any{"output": wire.OutputEvent{}, "end": wire.OutputEnd{}})
	huma.Register(hapi, op, func(ctx context.Context, in *outputInput) (*huma.StreamResponse, error) {
		at := in.LastEventID
		if at == "" {
			at = in.From
		}
		from, err := gateway.ParseOffsets(at)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		if _, err := s.Gateway.Execution(ctx, in.ID); err != nil {
			return nil, s.problem(ctx, err) // 404 before the stream starts
		}
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			es := httpapi.StartEventStream(hctx, s.Gateway.Clock)
			defer es.Close()
			e, err := s.Gateway.FollowOutput(hctx.Context(), in.ID, from, func(c gateway.Chunk) error {
				return es.Send("output", c.At.String(), wire.OutputEvent{Stream: c.Stream, Text: c.Text})
			})
			if err != nil {
				// The client left, the request ended or the store failed: the
				// stream just closes and the client resumes from its last ID.
				s.Logger.DebugContext(ctx, "output stream ended early", "execution_id", in.ID, "error", err)
				return
			}
			_ = es.Send("end", "", wire.OutputEnd{Status: e.Status, ExitCode: e.ExitCode}) // the stream closes either way
		}}, nil
	})
}
