package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/autogate/autogate/internal/lease"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
)

// Attribute names of the lease item (pk, sk and the fenced ones come from
// store/dynamo, which owns the table layout).
const (
	attrHolder          = storedynamo.AttrLeaseHolder
	attrEpoch           = storedynamo.AttrLeaseEpoch
	attrRecordVersion   = "recordVersion"
	attrLeaseDurationMs = "leaseDurationMs"
	attrAddress         = "address"
	attrCertFingerprint = "certFingerprint"
	attrRenewedAt       = "renewedAt"
)

// record is the lease item.
type record struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	Holder string `dynamodbav:"holder"`
	// Epoch grows by one at every change of holder; it is the fencing token.
	Epoch int64 `dynamodbav:"epoch"`
	// RecordVersion is random and changes at every write: what standbys
	// watch.
	RecordVersion   string `dynamodbav:"recordVersion"`
	LeaseDurationMs int64  `dynamodbav:"leaseDurationMs"`
	Address         string `dynamodbav:"address"`
	// CertFingerprint pins the certificate served at Address
	// (lease.Term.CertFingerprint).
	CertFingerprint string `dynamodbav:"certFingerprint"`
	// RenewedAt is the writer's wall clock: informational only, never
	// compared across nodes.
	RenewedAt time.Time `dynamodbav:"renewedAt"`
}

func (r *record) term() lease.Term {
	if r == nil {
		return lease.Term{}
	}
	return lease.Term{Holder: r.Holder, Epoch: r.Epoch, Address: r.Address, CertFingerprint: r.CertFingerprint}
}

// lostError means a conditional write found the lease in another state than
// the writer assumed; current is what it found (nil if absent).
type lostError struct{ current *record }

func (e *lostError) Error() string {
	if e.current == nil {
		return "lease item is absent"
	}
	return fmt.Sprintf("lease is held by %q at epoch %d", e.current.Holder, e.current.Epoch)
}

func newVersion() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // cannot happen on Linux
	}
	return hex.EncodeToString(b[:])
}

func (e *Elector) key() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		storedynamo.AttrPK: &types.AttributeValueMemberS{Value: e.pk},
		storedynamo.AttrSK: &types.AttributeValueMemberS{Value: e.sk},
	}
}

// read returns the lease item, nil if absent. Standbys read eventually
// consistently (half the price): safety never rests on a read, only on the
// conditional writes, and a stale read merely delays a takeover.
func (e *Elector) read(ctx context.Context) (*record, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	out, err := e.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(e.cfg.Table),
		Key:       e.key(),
	})
	if err != nil {
		return nil, storedynamo.Translate("GetItem", "lease "+e.cfg.Cluster, err)
	}
	return decode(out.Item)
}

func decode(m map[string]types.AttributeValue) (*record, error) {
	if len(m) == 0 {
		return nil, nil
	}
	var r record
	if err := attributevalue.UnmarshalMap(m, &r); err != nil {
		return nil, fmt.Errorf("decode lease item: %v", err)
	}
	return &r, nil
}

// write makes one conditional update of the lease item and returns the
// record as written. A failed condition is a *lostError carrying the item
// DynamoDB found. timeout bounds the call; 0 leaves that to ctx. The
// holder's address and certificate fingerprint are this node's when
// advertise is set, else cleared (a release).
func (e *Elector) write(ctx context.Context, timeout time.Duration, op string, cond expression.ConditionBuilder, holder string, epoch int64, advertise bool) (*record, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	r := &record{
		PK: e.pk, SK: e.sk, Holder: holder, Epoch: epoch, RecordVersion: newVersion(),
		LeaseDurationMs: e.cfg.LeaseDuration.Milliseconds(),
		RenewedAt:       e.clk.Now().UTC(),
	}
	if advertise {
		r.Address, r.CertFingerprint = e.cfg.Address, e.cfg.CertFingerprint
	}
	e.noteVersion(r.RecordVersion)
	upd := expression.Set(expression.Name(attrHolder), expression.Value(r.Holder)).
		Set(expression.Name(attrEpoch), expression.Value(r.Epoch)).
		Set(expression.Name(attrRecordVersion), expression.Value(r.RecordVersion)).
		Set(expression.Name(attrLeaseDurationMs), expression.Value(r.LeaseDurationMs)).
		Set(expression.Name(attrAddress), expression.Value(r.Address)).
		Set(expression.Name(attrCertFingerprint), expression.Value(r.CertFingerprint)).
		Set(expression.Name(attrRenewedAt), expression.Value(r.RenewedAt))
	x, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return nil, fmt.Errorf("lease %s: build expression: %v", op, err)
	}
	_, err = e.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(e.cfg.Table),
		Key:                                 e.key(),
		ConditionExpression:                 x.Condition(),
		UpdateExpression:                    x.Update(),
		ExpressionAttributeNames:            x.Names(),
		ExpressionAttributeValues:           x.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		cur, derr := decode(ccf.Item)
		if derr != nil {
			return nil, derr
		}
		return nil, &lostError{current: cur}
	}
	if err != nil {
		return nil, storedynamo.Translate("UpdateItem", "lease "+e.cfg.Cluster+" ("+op+")", err)
	}
	return r, nil
}

// acquire takes the lease: from nobody when obs is nil (the item is
// absent), else over the observed record, conditional on its version and
// epoch being unchanged, with the epoch one higher.
func (e *Elector) acquire(ctx context.Context, obs *record) (*record, error) {
	if obs == nil {
		return e.write(ctx, e.cfg.CallTimeout, "acquire", expression.AttributeNotExists(expression.Name(storedynamo.AttrPK)),
			e.cfg.Node, 1, true)
	}
	cond := expression.Name(attrRecordVersion).Equal(expression.Value(obs.RecordVersion)).
		And(expression.Name(attrEpoch).Equal(expression.Value(obs.Epoch)))
	return e.write(ctx, e.cfg.CallTimeout, "acquire", cond, e.cfg.Node, obs.Epoch+1, true)
}

// renew proves the active still holds term: conditional on holder and
// epoch only. Every takeover raises the epoch and a release clears the
// holder, so "holder = me and epoch = mine" means nobody has taken over
// since this term began. (Conditioning on the record version too would
// make a renewal whose answer was lost to a timeout look like a lost
// lease.) The call has no timeout of its own: lead cancels ctx when the
// round succeeded by another call or the term ended.
func (e *Elector) renew(ctx context.Context, term lease.Term) (*record, error) {
	return e.write(ctx, 0, "renew", e.heldBy(term), term.Holder, term.Epoch, true)
}

// release clears the holder, keeping the epoch, so a standby acquires at
// once (epoch+1) and fenced writes of term fail.
func (e *Elector) releaseTerm(ctx context.Context, term lease.Term) error {
	_, err := e.write(ctx, e.cfg.CallTimeout, "release", e.heldBy(term), "", term.Epoch, false)
	return err
}

func (e *Elector) heldBy(term lease.Term) expression.ConditionBuilder {
	return expression.Name(attrHolder).Equal(expression.Value(term.Holder)).
		And(expression.Name(attrEpoch).Equal(expression.Value(term.Epoch)))
}
